import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { SwapReading } from "../../state/store.js";
import type { Verdict } from "../verdict.js";
import { NO_OPS, NOTHING, riskRefusal, type Signal, section, tags } from "./signal.js";

/**
 * Sticky risk: after a risk challenge or deny, the subject carries `points` until it
 * authenticates afresh (`auth_time` after the last refusal). `duration_seconds` bounds how long
 * the mark is kept after the last refusal (storage, not forgiveness: every refusal renews it).
 */
const stickySection = section(
  "sticky_risk",
  z
    .strictObject({
      enabled: z.boolean().default(false),
      points: points.default(20),
      duration_seconds: z
        .number()
        .int()
        .positive()
        .default(7 * 86400),
    })
    .prefault({}),
);

const REASONS = {
  "risk.sticky":
    "A risk challenge or deny of this subject still raises its risk, until a login after the last refusal (a passed step-up or a new session).",
} as const;

/**
 * Sticky risk. A subject refused for risk (challenged, or denied with cause risk) stays at
 * raised risk: each later request carries `risk.sticky` with `points` until a login after the
 * last refusal (`auth_time` newer than the mark: a passed step-up or a new session) ends it for
 * that session, as Entra ID Protection keeps a risky user risky until MFA remediates it. Every
 * later refusal (a challenge, a risk deny, or a throttle while sticky) renews the mark, so a
 * thief who keeps being refused never outlasts it; the mark is only forgotten
 * `duration_seconds` after the last refusal (a bound on storage). A token from before the mark
 * (a stolen session) cannot end it. Machine tokens are exempt (nothing can log in again for
 * them), and a refusal that carries `risk.sticky` is no new failed attempt (failed-attempts.ts),
 * so stickiness cannot feed the attempt counters. Pair it with a rule (`reasons_any:
 * [risk.sticky]`, `action: challenge`) to force a challenge instead of adding points.
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
    // the store's TTL forgets the mark; this holds a store that keeps it a little longer to it
    if (ctx.now - refusedAt >= cfg.duration_seconds * 1000) return NOTHING;
    const authTime = ctx.caller.authTime;
    if (authTime !== undefined && authTime * 1000 > refusedAt) return NOTHING;
    const ago = Math.max(0, Math.round((ctx.now - refusedAt) / 1000));
    return {
      reasons: [{ code: "risk.sticky", points: cfg.points, detail: `refused ${ago}s ago` }],
    };
  },
  record(ctx, outcome) {
    if (!renews(outcome.verdict)) return NO_OPS;
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

/**
 * A refusal that starts or renews the mark: a risk challenge or deny, or a throttle of a
 * subject already sticky (refused while under suspicion). A throttle alone is a rate, not risk.
 */
function renews(verdict: Verdict): boolean {
  if (riskRefusal(verdict)) return true;
  return verdict.kind === "throttle" && verdict.reasons.some((r) => r.code === "risk.sticky");
}
