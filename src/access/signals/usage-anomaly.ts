import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { BaselineOp, BaselineReading } from "../../state/store.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, section, tags } from "./signal.js";

const usageSection = section(
  "usage_anomaly",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      bucket_seconds: z.number().int().positive().default(60),
      /** EWMA weight of the newest bucket. */
      alpha: z.number().gt(0).lt(1).default(0.1),
      /** Buckets seen before the baseline is trusted. */
      min_samples: z.number().int().positive().default(10),
      /** How many standard deviations above the mean counts as anomalous. */
      sigmas: z.number().positive().default(4),
      /** Requests in the current bucket below which nothing is anomalous. */
      min_requests: z.number().int().positive().default(20),
      points: points.default(20),
    })
    .prefault({}),
);

const REASONS = {
  "usage.anomaly": "The subject's request rate is far above its own usual rate.",
} as const;

/**
 * Usage anomaly: the subject's requests in the current bucket against its own moving baseline
 * (EWMA mean and variance of past buckets, kept in the store). A burst more than `sigmas`
 * standard deviations above its usual rate scores even under the tier's hard limit.
 *
 * The baseline learns only from trusted requests (allowed, decided on the store's state):
 * it is read before the verdict (cost 0, this request added in the comparison) and counted
 * after an allow. A refused burst is evidence against the subject, not its new normal: a
 * scraper or an insider challenged for a burst cannot raise its own mean until the burst
 * looks usual (DESIGN.md section 6; the rest of the profile learns the same way).
 */
export const usageAnomaly: Signal<typeof REASONS, typeof usageSection> = {
  name: "usage.anomaly",
  reasons: REASONS,
  // a rate against the subject's own baseline: it throttles or steps up, it says nothing of the place
  keepsTrust: ["usage.anomaly"],
  policy: usageSection,
  enabled: (ctx) => ctx.policy.doc.signals.usage_anomaly.enabled && !ctx.caller.anonymous,
  ops: (ctx) => [baselineOp(ctx, 0)],
  record: (ctx, outcome) => (outcome.trusted ? [baselineOp(ctx, 1)] : NO_OPS),
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.usage_anomaly;
    const read = results[0] as BaselineReading | undefined;
    if (read === undefined) return NOTHING;
    // read only: this request is not in the open bucket yet
    const b: BaselineReading = { ...read, current: read.current + 1 };
    if (b.samples < cfg.min_samples || b.current < cfg.min_requests) return NOTHING;
    return isAnomalous(b, cfg.sigmas)
      ? {
          reasons: [
            {
              code: "usage.anomaly",
              points: cfg.points,
              detail: `${b.current} vs mean ${b.mean.toFixed(1)}`,
            },
          ],
        }
      : NOTHING;
  },
};

/** The subject's baseline op: a read (cost 0) before the verdict, a count (1) after an allow. */
function baselineOp(ctx: SignalContext, cost: number): BaselineOp {
  const cfg = ctx.policy.doc.signals.usage_anomaly;
  return {
    op: "baseline",
    key: { tag: tags.subject(ctx), name: "base" },
    bucketMs: cfg.bucket_seconds * 1000,
    alpha: cfg.alpha,
    // remember the baseline for about 1/alpha buckets of silence, at least a day
    ttlMs: Math.max(86_400_000, (cfg.bucket_seconds * 1000) / cfg.alpha),
    cost,
  };
}

/** True when `current` is more than `sigmas` deviations above the mean (deviation at least 1). */
export function isAnomalous(b: BaselineReading, sigmas: number): boolean {
  const sd = Math.max(1, Math.sqrt(Math.max(0, b.variance)));
  return b.current > b.mean + sigmas * sd;
}
