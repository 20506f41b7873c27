import type { Reason } from "../reasons.js";
import { NOTHING, type Signal, type SignalContext } from "./signal.js";

/** The subject prefix of a clearance issued to an anonymous session. */
export const ANONYMOUS_CLEARANCE_PREFIX = "anon:";

/**
 * A passed browser challenge (`decisions.challenge.interactive`). The transport read the
 * clearance cookie and checked its signature, lifetime, network and user agent; this signal
 * binds it to the caller: a clearance issued to another subject (or to an anonymous session
 * while the caller now shows a token) does not count. A valid one takes `clearance.points` off
 * the score (and the decision drops `risk.sticky` when `clears_sticky`); a refused one is a
 * 0-point reason, so it is counted and logged, and otherwise ignored. It never touches a
 * license denial or a hard block, which are decided before any score. Its settings are the
 * browser challenge's (`decisions.challenge.interactive.clearance`), not a signal section.
 */
const REASONS = {
  "challenge.cleared":
    "A valid clearance cookie (a passed browser challenge) lowers the score, and may clear sticky risk.",
  "challenge.clearance_forged":
    "A clearance cookie that is not riskgate's: bad signature, unknown kid, or not a clearance. Ignored.",
  "challenge.clearance_expired": "A clearance cookie past its lifetime. Ignored.",
  "challenge.clearance_rebound":
    "A clearance cookie replayed from another network, user agent or subject than it was issued to. Ignored.",
} as const;

export const clearance: Signal<typeof REASONS, undefined> = {
  name: "challenge.clearance",
  reasons: REASONS,
  enabled: (ctx) => ctx.req.clearance !== undefined,
  evaluate(ctx) {
    const fact = ctx.req.clearance;
    if (fact === undefined) return NOTHING;
    if (fact.kind === "refused") {
      const code =
        fact.why === "forged"
          ? "challenge.clearance_forged"
          : fact.why === "expired"
            ? "challenge.clearance_expired"
            : "challenge.clearance_rebound";
      return { reasons: [{ code, points: 0, detail: fact.why }] };
    }
    if (!clearanceBound(ctx)) {
      return { reasons: [{ code: "challenge.clearance_rebound", points: 0, detail: "subject" }] };
    }
    const points = ctx.policy.doc.decisions.challenge.interactive.clearance.points;
    const reason: Reason = { code: "challenge.cleared", points: -points, detail: fact.mechanism };
    return { reasons: [reason] };
  },
};

/** The request carries a valid clearance issued to this caller (or to its anonymous session). */
export function clearanceBound(ctx: SignalContext): boolean {
  const fact = ctx.req.clearance;
  if (fact?.kind !== "valid") return false;
  return ctx.caller.anonymous
    ? fact.subject.startsWith(ANONYMOUS_CLEARANCE_PREFIX)
    : fact.subject === ctx.caller.subject;
}
