import type { PolicyDocument } from "../policy.js";
import { REASONS } from "../reasons.js";
import { signalsBlock } from "./index.js";
import { dataGaps } from "./signal-data.js";

/** Which outside data the server will have (from RISKGATE_GEO and its files). */
export interface DataAvailable {
  readonly city: boolean;
  readonly asn: boolean;
}

/** One switch of the policy's `signals` block: on or off, and why when it does nothing. */
export interface SignalStatus {
  /** The policy path of the switch, e.g. `signals.places` or `signals.velocity.population`. */
  readonly path: string;
  readonly on: boolean;
  /** Why it is off, or why, although on, it scores nothing (idle). */
  readonly why?: string;
}

type Signals = PolicyDocument["signals"];
type Section = { readonly enabled?: boolean };

/**
 * Switches that stay off until a site configures them (they need its data), with what they
 * lack; every other signal is on unless the policy turns it off.
 */
const NEEDS: Readonly<Record<string, (s: Signals) => string | undefined>> = {
  "signals.hosting_asn": (s) =>
    s.hosting_asn.file === undefined ? "no hosting ASN list (signals.hosting_asn.file)" : undefined,
  "signals.external_scores": (s) =>
    s.external_scores.sources.length === 0 ? "no external score sources" : undefined,
  "signals.scoring_webhook": (s) =>
    s.scoring_webhook.url === undefined
      ? "no scoring webhook (signals.scoring_webhook.url)"
      : undefined,
  "signals.device.posture": (s) =>
    s.device.posture_header === undefined
      ? "no device posture header (signals.device.posture_header)"
      : undefined,
  "signals.device.missing": (s) =>
    s.device.missing_points === 0
      ? "no device header every browser sends (signals.device.missing_points)"
      : undefined,
};

/** Switches nested in a section, each with its own `enabled` (or points that turn it on). */
const NESTED: readonly { path: string; on(s: Signals): boolean; parent: keyof Signals }[] = [
  {
    path: "signals.velocity.population",
    on: (s) => s.velocity.population.enabled,
    parent: "velocity",
  },
  {
    path: "signals.velocity.person_ceiling",
    on: (s) => s.velocity.person_ceiling.enabled,
    parent: "velocity",
  },
  {
    path: "signals.device.posture",
    on: (s) => s.device.posture_header !== undefined,
    parent: "device",
  },
  { path: "signals.device.missing", on: (s) => s.device.missing_points > 0, parent: "device" },
];

/**
 * What `riskgate policy validate` reports about the signals: every section of the `signals`
 * block and the switches inside them, on or off, with why an off one is off ("turned off by the
 * policy", or the site data it lacks) and why an on one may still score nothing (no city or ASN
 * data, no list files).
 */
export function signalStatus(doc: PolicyDocument, data: DataAvailable): SignalStatus[] {
  const defaults = signalsBlock(REASONS).schema.parse({}) as Signals;
  const signals = doc.signals;
  const idle = idleReasons(doc, data);
  const out: SignalStatus[] = [];
  const add = (path: string, on: boolean, defaultOn: boolean) => {
    if (on) {
      const why = idle.get(path);
      out.push(why === undefined ? { path, on } : { path, on, why });
      return;
    }
    const why = defaultOn
      ? "turned off by the policy"
      : (NEEDS[path]?.(signals) ?? "off by default");
    out.push({ path, on, why });
  };
  for (const key of Object.keys(signals) as (keyof Signals)[]) {
    const section = signals[key] as Section;
    if (typeof section.enabled !== "boolean") continue;
    add(`signals.${key}`, section.enabled, (defaults[key] as Section).enabled === true);
    for (const nested of NESTED.filter((n) => n.parent === key)) {
      if (section.enabled) add(nested.path, nested.on(signals), nested.on(defaults));
    }
  }
  return out;
}

/** Why a signal that is on scores nothing here: missing geo data, no list files. */
function idleReasons(doc: PolicyDocument, data: DataAvailable): Map<string, string> {
  const idle = new Map<string, string>();
  const gaps = dataGaps(doc, data);
  for (const path of gaps.idle) idle.set(path, "idle: no city data (RISKGATE_GEO)");
  if (doc.signals.hosting_asn.file !== undefined && !data.asn) {
    idle.set("signals.hosting_asn", "idle: no ASN data (RISKGATE_GEO)");
  }
  const lists = doc.signals.ip_reputation;
  if (lists.block.length === 0 && lists.allow.length === 0) {
    idle.set("signals.ip_reputation", "idle: no list files (signals.ip_reputation.block)");
  }
  return idle;
}

/** One line per switch, as `policy validate` prints them. */
export function formatSignalStatus(status: readonly SignalStatus[]): string {
  const on = status.filter((s) => s.on);
  const off = status.filter((s) => !s.on);
  const line = (s: SignalStatus) => `  ${s.path}${s.why === undefined ? "" : ` (${s.why})`}\n`;
  return `signals on:\n${on.map(line).join("")}signals off:\n${off.map(line).join("") || "  (none)\n"}`;
}
