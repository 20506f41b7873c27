import type { TierPolicy } from "../../config/policy-schema.js";
import type { StoreOp, WindowReading } from "../../state/store.js";
import type { ReasonCode } from "../reasons.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, tags } from "./signal.js";

type LimitKey = keyof NonNullable<TierPolicy["limits"]>;

/**
 * Request velocity of one dimension (subject, org, IP or device) against the tier's limit in
 * the sliding window: over the limit throttles (429 with Retry-After until the window frees),
 * near it adds points.
 *
 * What a window counts: the subject's own window counts every request the subject sends
 * (`attempts`), so a client that ignores Retry-After keeps only itself throttled. The shared
 * windows (org, IP, device) count only served requests: they are read before the verdict
 * (cost 0, this request added in the comparison) and counted after it when the request
 * reached the upstream, so one throttled subject cannot lock out the rest of its org or IP.
 */
function velocity(
  code: ReasonCode,
  limitKey: LimitKey,
  tag: (ctx: SignalContext) => string,
  present: (ctx: SignalContext) => boolean,
  attempts: boolean,
): Signal {
  const windowOp = (ctx: SignalContext, cost: number): StoreOp => ({
    op: "window",
    key: { tag: tag(ctx), name: "vel" },
    windowMs: ctx.policy.doc.signals.velocity.window_seconds * 1000,
    cost,
  });
  return {
    name: code,
    enabled: (ctx) =>
      ctx.policy.doc.signals.velocity.enabled &&
      ctx.tier.limits?.[limitKey] !== undefined &&
      present(ctx),
    ops: (ctx) => [windowOp(ctx, attempts ? 1 : 0)],
    ...(attempts
      ? {}
      : { record: (ctx, outcome) => (outcome.served ? [windowOp(ctx, 1)] : NO_OPS) }),
    evaluate(ctx, results) {
      const limit = ctx.tier.limits?.[limitKey];
      const reading = results[0] as WindowReading | undefined;
      if (limit === undefined || reading === undefined) return NOTHING;
      const cfg = ctx.policy.doc.signals.velocity;
      // a shared window was only read: this request is not in it yet
      const count = attempts ? reading.count : reading.count + 1;
      const detail = `${count}/${limit} per ${cfg.window_seconds}s`;
      if (count > limit) {
        return {
          reasons: [],
          throttle: {
            retryAfterSeconds: Math.max(1, Math.ceil(reading.resetMs / 1000)),
            reason: { code, points: 0, detail },
          },
        };
      }
      if (count >= cfg.near_limit_ratio * limit && cfg.near_limit_points > 0) {
        return { reasons: [{ code, points: cfg.near_limit_points, detail }] };
      }
      return NOTHING;
    },
  };
}

export const subjectVelocity = velocity(
  "velocity.subject",
  "requests_per_window",
  tags.subject,
  () => true,
  true,
);
export const orgVelocity = velocity(
  "velocity.org",
  "org_requests_per_window",
  tags.org,
  (ctx) => ctx.caller.org !== "",
  false,
);
export const ipVelocity = velocity(
  "velocity.ip",
  "ip_requests_per_window",
  tags.ip,
  (ctx) => ctx.req.clientIp !== "",
  false,
);
export const deviceVelocity = velocity(
  "velocity.device",
  "device_requests_per_window",
  tags.device,
  (ctx) => ctx.deviceId !== "",
  false,
);

/** The UTC calendar period a quota counts in: its id and when the next one starts (ms). */
export function quotaPeriod(period: "day" | "month", now: number): { id: string; endsAt: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (period === "day") {
    return {
      id: d.toISOString().slice(0, 10),
      endsAt: Date.UTC(y, m, d.getUTCDate() + 1),
    };
  }
  return { id: d.toISOString().slice(0, 7), endsAt: Date.UTC(y, m + 1, 1) };
}

/**
 * Usage quota per org (per subject without an org) per calendar day or month: over it
 * throttles until the next period; past 90% it adds the velocity near-limit points. Like the
 * shared velocity windows it counts only served requests (read before, counted after).
 */
export const quota: Signal = {
  name: "quota",
  enabled: (ctx) => ctx.tier.quota !== undefined,
  ops: (ctx) => quotaOps(ctx, 0),
  record: (ctx, outcome) => (outcome.served ? quotaOps(ctx, 1) : NO_OPS),
  evaluate(ctx, results) {
    const q = ctx.tier.quota;
    const reading = results[0] as { count: number } | undefined;
    if (q === undefined || reading === undefined) return NOTHING;
    const count = reading.count + 1; // read only: this request is not counted yet
    const detail = `${count}/${q.requests} per ${q.period}`;
    if (count > q.requests) {
      const { endsAt } = quotaPeriod(q.period, ctx.now);
      return {
        reasons: [],
        throttle: {
          retryAfterSeconds: Math.max(1, Math.ceil((endsAt - ctx.now) / 1000)),
          reason: { code: "quota.exceeded", points: 0, detail },
        },
      };
    }
    const near = ctx.policy.doc.signals.velocity.near_limit_points;
    if (count >= 0.9 * q.requests && near > 0) {
      return { reasons: [{ code: "quota.near", points: near, detail }] };
    }
    return NOTHING;
  },
};

function quotaOps(ctx: SignalContext, cost: number): readonly StoreOp[] {
  const q = ctx.tier.quota;
  if (q === undefined) return NO_OPS;
  const { id, endsAt } = quotaPeriod(q.period, ctx.now);
  const tag = ctx.caller.org === "" ? tags.subject(ctx) : tags.org(ctx);
  return [
    { op: "count", key: { tag, name: `quota:${id}` }, cost, ttlMs: endsAt - ctx.now + 86_400_000 },
  ];
}
