import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { SwapReading } from "../../state/store.js";
import { NO_OPS, NOTHING, riskRefusal, type Signal, section, tags } from "./signal.js";

/**
 * Sticky risk: after a risk challenge or deny, the subject carries `points` for
 * `duration_seconds`, or until it authenticates afresh (`auth_time` after the refusal).
 */
const stickySection = section(
  "sticky_risk",
  z
    .strictObject({
      enabled: z.boolean().default(false),
      points: points.default(20),
      duration_seconds: z.number().int().positive().default(900),
    })
    .prefault({}),
);

const REASONS = {
  "risk.sticky":
    "A recent risk challenge or deny of this subject still raises its risk (until it expires or a fresh login).",
} as const;

/**
 * Sticky risk. A subject refused for risk (challenged, or denied with cause risk) stays at
 * raised risk for `duration_seconds`: each later request carries `risk.sticky` with `points`,
 * until a fresh authentication (`auth_time` after the refusal) clears it, as Entra ID
 * Protection remediates a risky user by MFA. Machine tokens are exempt (nothing can log in
 * again for them), and a refusal that carries `risk.sticky` is no new failed attempt
 * (failed-attempts.ts), so stickiness cannot feed itself. Pair it with a rule (`reasons_any: [risk.sticky]`,
 * `action: challenge`) to force a challenge instead of adding points.
 *
 * Read before the verdict (`get`, in the deciding batch); written after it (`swap`, the
 * refusal time in ms), so the deciding path keeps its one round trip.
 */
export const stickyRisk: Signal<typeof REASONS, typeof stickySection> = {
  name: "risk.sticky",
  reasons: REASONS,
  policy: stickySection,
  // not on machine tokens: no person can step up for a client-credentials grant, so nothing
  // could clear the stickiness before it expires, and an SDK or batch job would sit it out
  enabled: (ctx) =>
    ctx.policy.doc.signals.sticky_risk.enabled &&
    !ctx.caller.anonymous &&
    ctx.clientClass !== "machine",
  ops: (ctx) => [{ op: "get", key: { tag: tags.subject(ctx), name: "sticky" } }],
  evaluate(ctx, results) {
    const previous = (results[0] as SwapReading | undefined)?.previous ?? null;
    if (previous === null) return NOTHING;
    const refusedAt = Number(previous);
    if (!Number.isFinite(refusedAt)) return NOTHING;
    const cfg = ctx.policy.doc.signals.sticky_risk;
    if (ctx.now - refusedAt >= cfg.duration_seconds * 1000) return NOTHING;
    const authTime = ctx.caller.authTime;
    if (authTime !== undefined && authTime * 1000 > refusedAt) return NOTHING;
    const ago = Math.max(0, Math.round((ctx.now - refusedAt) / 1000));
    return {
      reasons: [{ code: "risk.sticky", points: cfg.points, detail: `refused ${ago}s ago` }],
    };
  },
  record(ctx, outcome) {
    // a refusal while already sticky does not restart the clock: the raised risk lasts
    // duration_seconds from the first refusal, so a client that cannot log in again (an SDK,
    // a batch job) is not held forever by the stickiness's own challenges
    if (!riskRefusal(outcome.verdict)) return NO_OPS;
    if (outcome.enforced.reasons.some((r) => r.code === "risk.sticky")) return NO_OPS;
    const cfg = ctx.policy.doc.signals.sticky_risk;
    return [
      {
        op: "swap",
        key: { tag: tags.subject(ctx), name: "sticky" },
        value: String(ctx.now),
        ttlMs: cfg.duration_seconds * 1000,
      },
    ];
  },
};
