import type { BaselineReading } from "../../state/store.js";
import { NOTHING, type Signal, tags } from "./signal.js";

/**
 * Usage anomaly: the subject's requests in the current bucket against its own moving baseline
 * (EWMA mean and variance of past buckets, kept in the store). A burst more than `sigmas`
 * standard deviations above its usual rate scores even under the tier's hard limit.
 */
export const usageAnomaly: Signal = {
  name: "usage.anomaly",
  enabled: (ctx) => ctx.policy.doc.signals.usage_anomaly.enabled && !ctx.caller.anonymous,
  ops(ctx) {
    const cfg = ctx.policy.doc.signals.usage_anomaly;
    return [
      {
        op: "baseline",
        key: { tag: tags.subject(ctx), name: "base" },
        bucketMs: cfg.bucket_seconds * 1000,
        alpha: cfg.alpha,
        // remember the baseline for about 1/alpha buckets of silence, at least a day
        ttlMs: Math.max(86_400_000, (cfg.bucket_seconds * 1000) / cfg.alpha),
      },
    ];
  },
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.usage_anomaly;
    const b = results[0] as BaselineReading | undefined;
    if (b === undefined || b.samples < cfg.min_samples || b.current < cfg.min_requests) {
      return NOTHING;
    }
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

/** True when `current` is more than `sigmas` deviations above the mean (deviation at least 1). */
export function isAnomalous(b: BaselineReading, sigmas: number): boolean {
  const sd = Math.max(1, Math.sqrt(Math.max(0, b.variance)));
  return b.current > b.mean + sigmas * sd;
}
