import { z } from "zod";
import type { SectionIssue, SignalsBlock } from "../../config/policy-schema.js";
import { staleAuthentication, weakAuthentication } from "./auth-strength.js";
import { clearance } from "./clearance.js";
import { clientClassSection } from "./client-class.js";
import { deviceMissing, devicePosture, newDevice } from "./device.js";
import { externalScores } from "./external-score.js";
import { scoringWebhookSection } from "./external-webhook.js";
import { failedAttempts } from "./failed-attempts.js";
import { countryPolicy, impossibleTravel, newCountry } from "./geo.js";
import { hostingAsn, ipReputation } from "./ip-reputation.js";
import { machineBaseline } from "./machine-baseline.js";
import { places } from "./places.js";
import { populationPace } from "./population-pace.js";
import { requestShape } from "./request-shape.js";
import { sensitiveBaseline } from "./sensitive-baseline.js";
import { routeSensitivity } from "./sensitivity.js";
import { sessionBinding } from "./session-binding.js";
import type { ReasonTable, Signal, SignalSection } from "./signal.js";
import { stepUp } from "./step-up.js";
import { stickyRisk } from "./sticky-risk.js";
import { stuffing } from "./stuffing.js";
import { usageAnomaly } from "./usage-anomaly.js";
import {
  deviceVelocity,
  ipVelocity,
  ipVelocityAnyTier,
  orgVelocity,
  personCeiling,
  quota,
  subjectVelocity,
  sustainedVelocity,
} from "./velocity.js";

/**
 * The signals a decision runs, in order: their store ops go out in this order in one batch,
 * their reasons appear on a verdict in this order, and the first throttle and the first block
 * win. A signal that reads what another one's ops left (`after`) comes later; the pipeline
 * checks that when it is built ({@link checkSignalOrder}). Adding a signal is one file and one
 * line here: the policy schema's `signals` block, the reason-code table and the data-gap check
 * are built from this list.
 */
export const SIGNALS = [
  subjectVelocity,
  orgVelocity,
  ipVelocity,
  deviceVelocity,
  ipVelocityAnyTier,
  sustainedVelocity,
  populationPace,
  personCeiling,
  quota,
  failedAttempts,
  stuffing,
  countryPolicy,
  impossibleTravel,
  newCountry,
  places,
  ipReputation,
  hostingAsn,
  newDevice,
  sessionBinding,
  devicePosture,
  deviceMissing,
  usageAnomaly,
  machineBaseline,
  sensitiveBaseline,
  requestShape,
  weakAuthentication,
  staleAuthentication,
  routeSensitivity,
  externalScores,
  stickyRisk,
  clearance,
  stepUp,
] as const;

type Registered = (typeof SIGNALS)[number];

/** Every reason code a registered signal can fire. */
export type SignalReasonCode = Registered extends infer S
  ? S extends Signal<infer R, SignalSection | undefined>
    ? keyof R & string
    : never
  : never;

/** Sections of parts that evaluate nothing themselves: the client class, the scoring webhook. */
type PartSection = ReturnType<typeof clientClassSection> | typeof scoringWebhookSection;

/** Every section of the `signals` block, by its key. */
type Section = NonNullable<Registered["policy"]> | PartSection;
type SignalsShape = { [K in Section["key"]]: Extract<Section, { key: K }>["schema"] };

/** The reason codes of the registered signals, with their meaning. */
export function signalReasons(): Readonly<Record<SignalReasonCode, string>> {
  const table: Record<string, string> = {};
  for (const signal of SIGNALS) Object.assign(table, signal.reasons as ReasonTable);
  return table as Record<SignalReasonCode, string>;
}

/**
 * The policy schema's `signals` block from the registry: the client class first, then each
 * signal's section in registry order, then the scoring webhook's. `reasons` is the whole
 * reason-code table (the client class's `machine_skips` names codes of it).
 */
export function signalsBlock(reasons: ReasonTable) {
  const codes = Object.keys(reasons) as [string, ...string[]];
  const sections: readonly SignalSection[] = [
    clientClassSection(codes),
    ...SIGNALS.flatMap((s): SignalSection[] => (s.policy === undefined ? [] : [s.policy])),
    scoringWebhookSection,
  ];
  const shape = Object.fromEntries(sections.map((s) => [s.key, s.schema])) as SignalsShape;
  const schema = z.strictObject(shape).prefault({});
  type Signals = z.output<typeof schema>;
  const of = (signals: Signals, s: SignalSection): unknown =>
    (signals as Record<string, unknown>)[s.key];
  const block: SignalsBlock<typeof schema> = {
    schema,
    reasonCodes: new Set(codes.filter((code) => !code.includes("<"))),
    externalNames: (signals) =>
      sections.flatMap((s) => [...(s.externalNames?.(of(signals, s)) ?? [])]),
    check: (signals, doc): SectionIssue[] =>
      sections.flatMap((s) => [...(s.check?.(of(signals, s), doc) ?? [])]),
    upstreamHeaders: (signals) =>
      sections.flatMap((s) => [...(s.upstreamHeaders?.(of(signals, s)) ?? [])]),
  };
  return block;
}

/** The registry's order is wrong: a signal runs before one it must run after, or they loop. */
export class SignalOrderError extends TypeError {
  override readonly name = "SignalOrderError";
  constructor(
    readonly code: "cycle" | "order" | "duplicate",
    readonly signals: readonly string[],
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks a signal list's order against each signal's `after`: a signal named there that is in
 * the list must come earlier. A cycle of `after` names can never be ordered and is reported as
 * one; a name listed twice, or a policy section claimed twice, is a mistake too. Names in
 * `after` that are not in the list are fine (a list may leave a signal out).
 */
export function checkSignalOrder(signals: readonly Signal[]): void {
  const at = new Map<string, number>();
  const sections = new Set<string>();
  signals.forEach((s, i) => {
    if (at.has(s.name)) {
      throw new SignalOrderError("duplicate", [s.name], `signal ${s.name} is listed twice`);
    }
    at.set(s.name, i);
    if (s.policy === undefined) return;
    if (sections.has(s.policy.key)) {
      throw new SignalOrderError(
        "duplicate",
        [s.name],
        `signals.${s.policy.key} is claimed by two signals`,
      );
    }
    sections.add(s.policy.key);
  });
  const cycle = findCycle(signals, at);
  if (cycle !== undefined) {
    throw new SignalOrderError(
      "cycle",
      cycle,
      `signals run after each other: ${cycle.join(" -> ")}`,
    );
  }
  signals.forEach((s, i) => {
    for (const before of s.after ?? []) {
      const j = at.get(before);
      if (j !== undefined && j > i) {
        throw new SignalOrderError(
          "order",
          [s.name, before],
          `signal ${s.name} must run after ${before}, which comes later in the list`,
        );
      }
    }
  });
}

/** A loop of `after` names among the listed signals (depth-first), or undefined. */
function findCycle(
  signals: readonly Signal[],
  at: ReadonlyMap<string, number>,
): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === "done") return undefined;
    if (state.get(name) === "open") return [...path.slice(path.indexOf(name)), name];
    state.set(name, "open");
    const index = at.get(name) as number;
    for (const next of signals[index]?.after ?? []) {
      if (!at.has(next)) continue;
      const found = visit(next, [...path, name]);
      if (found !== undefined) return found;
    }
    state.set(name, "done");
    return undefined;
  };
  for (const s of signals) {
    const found = visit(s.name, []);
    if (found !== undefined) return found;
  }
  return undefined;
}
