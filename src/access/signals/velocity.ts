import type { TierPolicy } from "../../config/policy-schema.js";
import type { StoreOp, WindowReading } from "../../state/store.js";
import type { ReasonCode } from "../reasons.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, tags } from "./signal.js";

type LimitKey = keyof NonNullable<TierPolicy["limits"]>;

/**
 * Request velocity of one dimension (subject, org, IP or device) against the tier's limit in
 * the sliding window: over the limit throttles (429 with Retry-After until the window frees),
 * near it adds points. The window is exact (the store's limited window, key `rate`): no span
 * of the window admits more than the limit, whatever the phase of a burst.
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
  return windowLimit({
    code,
    tag,
    keyName: "rate",
    attempts,
    limit: (ctx) => (present(ctx) ? ctx.tier.limits?.[limitKey] : undefined),
    windowSeconds: (ctx) => ctx.policy.doc.signals.velocity.window_seconds,
    throttles: true,
  });
}

/**
 * The subject's own velocity window (every request it sends, refused ones too) as a later
 * signal of the same batch reads it: read after subject velocity counted this request into it
 * (cost 0), or counted here (cost 1) when subject velocity does not run for this caller (its
 * tier has no per-subject limit). One counter either way, never a second one of the same count.
 * The caller's signal must come after `subjectVelocity` in the signal list.
 */
export function subjectWindowOp(ctx: SignalContext): StoreOp {
  const limit = ctx.tier.limits?.requests_per_window;
  const windowMs = ctx.policy.doc.signals.velocity.window_seconds * 1000;
  const tag = tags.subject(ctx);
  // the same op as subject velocity's, read only; without a limit, an estimate of its own
  return limit !== undefined
    ? { op: "window", key: { tag, name: "rate" }, windowMs, cost: 0, limit }
    : { op: "window", key: { tag, name: "vel" }, windowMs, cost: 1 };
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

/** One sliding-window limit: where it counts, how long, how much, and what going over does. */
interface WindowLimitSpec {
  readonly code: ReasonCode;
  readonly tag: (ctx: SignalContext) => string;
  /** Store key name of the window. */
  readonly keyName: string;
  /** Count every request (the subject's own windows) or only served ones (shared windows). */
  readonly attempts: boolean;
  /** The limit of this request's caller; undefined turns the signal off for it. */
  readonly limit: (ctx: SignalContext) => number | undefined;
  readonly windowSeconds: (ctx: SignalContext) => number;
  /** Over the limit: throttle (true), or add the near-limit points only (false). */
  readonly throttles: boolean;
  /** Points over the limit when it does not throttle. */
  readonly overPoints?: (ctx: SignalContext) => number;
}

function windowLimit(spec: WindowLimitSpec): Signal {
  const { code, attempts } = spec;
  const windowOp = (ctx: SignalContext, cost: number): StoreOp => {
    const op = {
      op: "window",
      key: { tag: spec.tag(ctx), name: spec.keyName },
      windowMs: spec.windowSeconds(ctx) * 1000,
      cost,
    } as const;
    // a limit that throttles is exact; one that only scores keeps the O(1) estimate
    const limit = spec.throttles ? spec.limit(ctx) : undefined;
    return limit === undefined ? op : { ...op, limit };
  };
  return {
    name: code,
    enabled: (ctx) => ctx.policy.doc.signals.velocity.enabled && spec.limit(ctx) !== undefined,
    ops: (ctx) => [windowOp(ctx, attempts ? 1 : 0)],
    ...(attempts
      ? {}
      : { record: (ctx, outcome) => (outcome.served ? [windowOp(ctx, 1)] : NO_OPS) }),
    evaluate(ctx, results) {
      const limit = spec.limit(ctx);
      const reading = results[0] as WindowReading | undefined;
      if (limit === undefined || reading === undefined) return NOTHING;
      const cfg = ctx.policy.doc.signals.velocity;
      // a shared window was only read: this request is not in it yet
      const count = attempts ? reading.count : reading.count + 1;
      const detail = `${Math.round(count)}/${limit} per ${spec.windowSeconds(ctx)}s`;
      if (count > limit) {
        if (!spec.throttles) {
          const points = spec.overPoints?.(ctx) ?? cfg.near_limit_points;
          return points > 0 ? { reasons: [{ code, points, detail }] } : NOTHING;
        }
        return {
          reasons: [],
          throttle: {
            retryAfterSeconds: Math.max(1, Math.ceil(reading.resetMs / 1000)),
            reason: { code, points: 0, detail },
          },
        };
      }
      if (spec.throttles && count >= cfg.near_limit_ratio * limit && cfg.near_limit_points > 0) {
        return { reasons: [{ code, points: cfg.near_limit_points, detail }] };
      }
      return NOTHING;
    },
  };
}

/**
 * Sustained velocity: the subject's requests over `sustained.window_seconds` (an hour) against
 * `sustained.ratio` of what its tier's per-window limit would allow over that time. Scraping
 * paced just under the per-minute limit never trips it, nor the near-limit points for long;
 * a person or an SDK does not keep half its per-minute limit busy for an hour. Off when the
 * long window is not at least twice the velocity window. It scores
 * (`sustained.points`), it does not throttle: a nightly batch job may do this by design.
 */
export const sustainedVelocity = windowLimit({
  code: "velocity.sustained",
  tag: tags.subject,
  keyName: "sus",
  attempts: true,
  limit(ctx) {
    const cfg = ctx.policy.doc.signals.velocity;
    const perWindow = ctx.tier.limits?.requests_per_window;
    if (cfg.sustained.ratio === 0 || perWindow === undefined) return undefined;
    const windows = cfg.sustained.window_seconds / cfg.window_seconds;
    // a long window no longer than the velocity window would only be a lower limit
    if (windows < 2) return undefined;
    return Math.max(1, Math.floor(perWindow * windows * cfg.sustained.ratio));
  },
  windowSeconds: (ctx) => ctx.policy.doc.signals.velocity.sustained.window_seconds,
  throttles: false,
  overPoints: (ctx) => ctx.policy.doc.signals.velocity.sustained.points,
});

/**
 * A person's ceiling: a browser-class session (an interactive login, signals/client-class.ts)
 * over `person_ceiling.requests` in `person_ceiling.window_seconds`, whatever its tier. The
 * pace against the population (population-pace.ts) is silent when its class has too few
 * subjects to average (a quiet night, a small deployment); a person reading screens does not
 * keep two requests a second going for ten minutes at any hour. Machine tokens are exempt (an
 * SDK or a batch job may). It scores (`points`); a rule can challenge on it. Counts every
 * request the subject sends, like the subject's own velocity window.
 */
export const personCeiling = windowLimit({
  code: "velocity.person_ceiling",
  tag: tags.subject,
  keyName: "pce",
  attempts: true,
  limit(ctx) {
    const cfg = ctx.policy.doc.signals.velocity.person_ceiling;
    return cfg.enabled && ctx.clientClass === "browser" && !ctx.caller.anonymous
      ? cfg.requests
      : undefined;
  },
  windowSeconds: (ctx) => ctx.policy.doc.signals.velocity.person_ceiling.window_seconds,
  throttles: false,
  overPoints: (ctx) => ctx.policy.doc.signals.velocity.person_ceiling.points,
});

/**
 * A client IP's limit whatever the caller's tier (`signals.velocity.ip_requests_per_window`):
 * an attacker holding an enterprise token does not get the enterprise IP budget. Counts
 * served requests in its own window, like the tier's IP limit.
 */
export const ipVelocityAnyTier = windowLimit({
  code: "velocity.ip_any_tier",
  tag: tags.ip,
  keyName: "rateip",
  attempts: false,
  limit: (ctx) =>
    ctx.req.clientIp === "" ? undefined : ctx.policy.doc.signals.velocity.ip_requests_per_window,
  windowSeconds: (ctx) => ctx.policy.doc.signals.velocity.window_seconds,
  throttles: true,
});

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
