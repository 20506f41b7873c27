import { z } from "zod";
import { points, seconds } from "../../config/policy-fields.js";
import type { StoreOp, SwapReading } from "../../state/store.js";
import { tokenIdOf } from "./places.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, section, tags } from "./signal.js";

const bindingSection = section(
  "session_binding",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      points: points.default(50),
      /** Another device within this many seconds of the bound device is parallel use. */
      concurrent_seconds: seconds.default(300),
      /** How long a session's binding is kept (a day: a long identity-provider session). */
      remember_seconds: z.number().int().positive().default(86400),
    })
    .prefault({}),
);

const REASONS = {
  "session.device_mismatch":
    "The login session is used from a device other than the one it is bound to, while that device uses it too.",
} as const;

/**
 * The login session a token belongs to: the OIDC `sid` claim, else the subject and its
 * `auth_time` (a refreshed token keeps the login's `auth_time`), else the token itself.
 */
export function sessionIdOf(ctx: SignalContext): string {
  const { sid, auth_time: authTime } = ctx.claims;
  if (typeof sid === "string" && sid !== "") return `sid:${sid}`;
  if (typeof authTime === "number") return `at:${authTime}`;
  return `tok:${tokenIdOf(ctx)}`;
}

/** Store keys of one session, all in the subject's slot. */
const key = (ctx: SignalContext, what: "bound" | "last" | "bound-seen" | "intruder") => ({
  tag: tags.subject(ctx),
  name: `sb:${what}:${sessionIdOf(ctx)}`,
});

/** "device,epochSeconds" of the session's latest request. */
function lastDevice(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const comma = value.lastIndexOf(",");
  return comma <= 0 ? undefined : value.slice(0, comma);
}

const previous = (results: readonly unknown[] | undefined, i: number): string | null =>
  (results?.[i] as SwapReading | undefined)?.previous ?? null;

/**
 * Session bound to its device (the idea of Entra ID token protection and of DPoP, RFC 9449):
 * a login session is bound to the device id of its first trusted request. Another device
 * presenting the same session scores when the bound device is using it at the same time: it
 * made a request within `concurrent_seconds`, or it came back after the other device appeared
 * (the two interleave; that device stays marked for the rest of the session). That is a
 * session token copied to another machine (an infostealer, an AitM relay) and replayed while
 * the owner keeps working, often through a residential proxy in the owner's country so that no
 * geo signal fires. A person who carries a session from one of its devices to another (a
 * phone on the train, the laptop at the office) uses one at a time and is not blamed.
 * Every request counts as a sighting, refused ones too; only a trusted (enforced allow)
 * request binds a session.
 */
export const sessionBinding: Signal<typeof REASONS, typeof bindingSection> = {
  name: "session.device_mismatch",
  reasons: REASONS,
  policy: bindingSection,
  enabled: (ctx) =>
    ctx.policy.doc.signals.session_binding.enabled && !ctx.caller.anonymous && ctx.deviceId !== "",
  ops: (ctx) => [
    { op: "get", key: key(ctx, "bound") },
    { op: "get", key: key(ctx, "bound-seen") },
    { op: "get", key: key(ctx, "intruder") },
    {
      op: "swap",
      key: key(ctx, "last"),
      value: `${ctx.deviceId},${Math.floor(ctx.now / 1000)}`,
      ttlMs: ctx.policy.doc.signals.session_binding.remember_seconds * 1000,
    },
  ],
  evaluate(ctx, results) {
    const bound = previous(results, 0);
    if (bound === null || bound === ctx.deviceId) return NOTHING;
    const cfg = ctx.policy.doc.signals.session_binding;
    if (previous(results, 2) === ctx.deviceId) {
      const detail = "interleaved with the bound device";
      return { reasons: [{ code: "session.device_mismatch", points: cfg.points, detail }] };
    }
    const seen = Number(previous(results, 1) ?? Number.NaN);
    if (Number.isFinite(seen) && ctx.now / 1000 - seen <= cfg.concurrent_seconds) {
      const detail = "bound device active";
      return { reasons: [{ code: "session.device_mismatch", points: cfg.points, detail }] };
    }
    return NOTHING;
  },
  record(ctx, outcome, results) {
    const ttlMs = ctx.policy.doc.signals.session_binding.remember_seconds * 1000;
    const bound = previous(results, 0);
    const now = String(Math.floor(ctx.now / 1000));
    if (bound === null) {
      if (!outcome.trusted) return NO_OPS;
      return [
        { op: "swap", key: key(ctx, "bound"), value: ctx.deviceId, ttlMs },
        { op: "swap", key: key(ctx, "bound-seen"), value: now, ttlMs },
      ];
    }
    if (bound !== ctx.deviceId) return NO_OPS;
    // the bound device is back: a device that used the session since then interleaves with it
    const ops: StoreOp[] = [{ op: "swap", key: key(ctx, "bound-seen"), value: now, ttlMs }];
    const other = lastDevice(previous(results, 3));
    if (other !== undefined && other !== ctx.deviceId) {
      ops.push({ op: "swap", key: key(ctx, "intruder"), value: other, ttlMs });
    }
    return ops;
  },
};
