import type { GeoReader } from "../../geo/geo-reader.js";
import type { PolicyDocument } from "../policy.js";
import { SIGNALS } from "./index.js";
import type { DataNeed, Signal } from "./signal.js";

/** Signals the policy turns on that the server has no data for. */
export interface SignalDataGaps {
  /**
   * Configured on purpose (a hosting ASN list, a tier's country lists) and unable to work: the
   * policy must be refused, or an operator reads "loaded" and believes a protection is on.
   */
  readonly missing: readonly string[];
  /** On by default and idle without geolocation (RISKGATE_GEO=off): worth a warning. */
  readonly idle: readonly string[];
}

/** The outside data signals read, in the order the check reports them, and whether a reader has it. */
const SOURCES: readonly {
  readonly source: DataNeed["source"];
  has(geo: GeoReader | undefined): boolean;
}[] = [
  { source: "asn", has: (geo) => geo?.data.asn === true },
  { source: "city", has: (geo) => geo?.data.city === true },
];

/**
 * Which of the policy's signals cannot see their data with this geo reader, from what each
 * registered signal says it needs (`data`). A signal that lacks its data scores nothing,
 * silently, which is how a hosting ASN list once did nothing on the embedded default.
 */
export function signalDataGaps(
  doc: PolicyDocument,
  geo: GeoReader | undefined,
  signals: readonly Signal[] = SIGNALS,
): SignalDataGaps {
  const lacking = SOURCES.filter((s) => !s.has(geo)).map((s) => s.source);
  return gapsOf(doc, lacking, signals);
}

/** The same check from which data there will be, before any reader is open (`policy validate`). */
export function dataGaps(
  doc: PolicyDocument,
  available: Readonly<Record<DataNeed["source"], boolean>>,
  signals: readonly Signal[] = SIGNALS,
): SignalDataGaps {
  const lacking = SOURCES.map((s) => s.source).filter((source) => !available[source]);
  return gapsOf(doc, lacking, signals);
}

function gapsOf(
  doc: PolicyDocument,
  lacking: readonly DataNeed["source"][],
  signals: readonly Signal[],
): SignalDataGaps {
  const missing: string[] = [];
  const idle: string[] = [];
  for (const source of lacking) {
    for (const need of needs(signals, source)) missing.push(...(need.missing?.(doc) ?? []));
  }
  for (const source of lacking) {
    for (const need of needs(signals, source)) {
      const path = need.idle?.(doc);
      if (path !== undefined) idle.push(path);
    }
  }
  return { missing, idle };
}

function needs(signals: readonly Signal[], source: DataNeed["source"]): DataNeed[] {
  return signals.flatMap((s) => (s.data ?? []).filter((need) => need.source === source));
}
