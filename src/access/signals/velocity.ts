import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { TierPolicy } from "../../config/policy-schema.js";
import type { StoreOp, WindowReading } from "../../state/store.js";
import type { ReasonCode } from "../reasons.js";
import { populationSchema } from "./population-pace.js";
import {
  NO_OPS,
  NOTHING,
  type ReasonTable,
  type Signal,
  type SignalContext,
  section,
  tags,
} from "./signal.js";

type LimitKey = keyof NonNullable<TierPolicy["limits"]>;

/** `signals.velocity`: the windows, the near-limit points, and the long-window signals. */
const velocitySection = section(
  "velocity",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      window_seconds: z.number().int().positive().default(60),
      /** Points once the subject used this share of its limit. */
      near_limit_ratio: z.number().gt(0).lte(1).default(0.8),
      near_limit_points: z.number().int().min(0).max(100).default(15),
      /** Requests per window from one client IP whatever the caller's tier (unset: none). */
      ip_requests_per_window: z.number().int().positive().optional(),
      /**
       * The subject's pace in the velocity window against its client class's average pace
       * (signals/population-pace.ts): a new token is not blind.
       */
      population: populationSchema,
      /** The subject's rate over a long window against its tier's per-window limit. */
      sustained: z
        .strictObject({
          window_seconds: z.number().int().positive().default(3600),
          /** Share of the tier's limit, kept up over the whole window, that scores (0 = off). */
          ratio: z.number().min(0).max(1).default(0.5),
          points: points.default(25),
        })
        .prefault({}),
      /**
       * A browser-class session's requests over a long window, whatever its tier
       * (`personCeiling` below): the floor when its class has no population to compare.
       */
      person_ceiling: z
        .strictObject({
          enabled: z.boolean().default(true),
          window_seconds: z.number().int().positive().default(600),
          /** Requests in the window above which the session scores. */
          requests: z.number().int().positive().default(1200),
          points: points.default(30),
        })
        .prefault({}),
    })
    .prefault({}),
);

const SUBJECT = {
  "velocity.subject": "The subject's request rate is near or over its tier's limit.",
} as const;
const ORG = {
  "velocity.org": "The org's request rate (all its subjects) is near or over its tier's limit.",
} as const;
const IP = {
  "velocity.ip": "The client IP's request rate is near or over the tier's limit.",
} as const;
const DEVICE = {
  "velocity.device": "The device's request rate is near or over the tier's limit.",
} as const;

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
function velocity<R extends ReasonTable>(
  reasons: R,
  code: ReasonCode,
  limitKey: LimitKey,
  tag: (ctx: SignalContext) => string,
  present: (ctx: SignalContext) => boolean,
  attempts: boolean,
): Signal<R, undefined> {
  return windowLimit(reasons, {
    code,
    tag,
    keyName: "rate",
    attempts,
    limit: (ctx) => (present(ctx) ? ctx.tier.limits?.[limitKey] : undefined),
    windowSeconds: (ctx) => ctx.policy.doc.signals.velocity.window_seconds,
    throttles: true,
  });
}

export const subjectVelocity: Signal<typeof SUBJECT, typeof velocitySection> = {
  ...velocity(SUBJECT, "velocity.subject", "requests_per_window", tags.subject, () => true, true),
  policy: velocitySection,
};
export const orgVelocity: Signal<typeof ORG, undefined> = velocity(
  ORG,
  "velocity.org",
  "org_requests_per_window",
  tags.org,
  (ctx) => ctx.caller.org !== "",
  false,
);
export const ipVelocity: Signal<typeof IP, undefined> = velocity(
  IP,
  "velocity.ip",
  "ip_requests_per_window",
  tags.ip,
  (ctx) => ctx.req.clientIp !== "",
  false,
);
export const deviceVelocity: Signal<typeof DEVICE, undefined> = velocity(
  DEVICE,
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

function windowLimit<R extends ReasonTable>(
  reasons: R,
  spec: WindowLimitSpec,
): Signal<R, undefined> {
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
    reasons,
    // a rate: it throttles or adds points, and says nothing of who is calling or from where
    keepsTrust: Object.keys(reasons),
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

const SUSTAINED = {
  "velocity.sustained":
    "The subject kept a high share of its tier's per-window limit busy for a long window (paced scraping).",
} as const;

/**
 * Sustained velocity: the subject's requests over `sustained.window_seconds` (an hour) against
 * `sustained.ratio` of what its tier's per-window limit would allow over that time. Scraping
 * paced just under the per-minute limit never trips it, nor the near-limit points for long;
 * a person or an SDK does not keep half its per-minute limit busy for an hour. Off when the
 * long window is not at least twice the velocity window. It scores
 * (`sustained.points`), it does not throttle: a nightly batch job may do this by design.
 */
export const sustainedVelocity: Signal<typeof SUSTAINED, undefined> = windowLimit(SUSTAINED, {
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

const PERSON_CEILING = {
  "velocity.person_ceiling":
    "A person's session (browser class) kept up more requests over a long window than a person reading screens can.",
} as const;

/**
 * A person's ceiling: a browser-class session (an interactive login, signals/client-class.ts)
 * over `person_ceiling.requests` in `person_ceiling.window_seconds`, whatever its tier. The
 * pace against the population (population-pace.ts) is silent when its class has too few
 * subjects to average (a quiet night, a small deployment); a person reading screens does not
 * keep two requests a second going for ten minutes at any hour. Machine tokens are exempt (an
 * SDK or a batch job may). It scores (`points`); a rule can challenge on it. Counts every
 * request the subject sends, like the subject's own velocity window.
 */
export const personCeiling: Signal<typeof PERSON_CEILING, undefined> = windowLimit(PERSON_CEILING, {
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

const IP_ANY_TIER = {
  "velocity.ip_any_tier":
    "The client IP's request rate is over the limit that applies whatever the tier.",
} as const;

/**
 * A client IP's limit whatever the caller's tier (`signals.velocity.ip_requests_per_window`):
 * an attacker holding an enterprise token does not get the enterprise IP budget. Counts
 * served requests in its own window, like the tier's IP limit.
 */
export const ipVelocityAnyTier: Signal<typeof IP_ANY_TIER, undefined> = windowLimit(IP_ANY_TIER, {
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
  // toISOString's YYYY-MM-DD, built from the fields already read (it formats the whole time)
  const month = y >= 1000 && y <= 9999 ? `${y}-${twoDigits(m + 1)}` : d.toISOString().slice(0, 7);
  if (period === "day") {
    const day = d.getUTCDate();
    return { id: `${month}-${twoDigits(day)}`, endsAt: Date.UTC(y, m, day + 1) };
  }
  return { id: month, endsAt: Date.UTC(y, m + 1, 1) };
}

const twoDigits = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * Usage quota per org (per subject without an org) per calendar day or month: over it
 * throttles until the next period; past 90% it adds the velocity near-limit points. Like the
 * shared velocity windows it counts only served requests (read before, counted after).
 */
const QUOTA = {
  "quota.exceeded": "The org (or subject) used up its tier's quota for the day or month.",
  "quota.near": "The org (or subject) used most of its tier's quota for the period.",
} as const;

export const quota: Signal<typeof QUOTA, undefined> = {
  name: "quota",
  reasons: QUOTA,
  keepsTrust: ["quota.exceeded", "quota.near"],
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
