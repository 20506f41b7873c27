import { z } from "zod";
import { seconds } from "../../config/policy-fields.js";
import { NOTHING, type Signal, section } from "./signal.js";

const weakSection = section(
  "weak_auth",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /** amr values that count as strong (any one suffices). */
      strong_amr: z.array(z.string().min(1)).default(["mfa", "hwk", "otp", "sms", "fpt", "face"]),
      /** acr values that count as strong. */
      strong_acr: z.array(z.string().min(1)).default([]),
      points: z.number().int().min(0).max(100).default(20),
      /** Extra points when the route is high sensitivity. */
      high_sensitivity_points: z.number().int().min(0).max(100).default(30),
    })
    .prefault({}),
);

const staleSection = section(
  "stale_auth",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      max_age_seconds: seconds.default(12 * 3600),
      points: z.number().int().min(0).max(100).default(10),
    })
    .prefault({}),
);

const WEAK = {
  "auth.weak": "The authentication methods (amr/acr) are weaker than the route asks for.",
} as const;
const STALE = {
  "auth.stale": "The last authentication (auth_time) is older than the route allows.",
} as const;

/**
 * Weak authentication: none of the token's `amr` values (nor its `acr`) is listed as strong.
 * High-sensitivity routes add more points, which is what turns a password-only session into a
 * step-up challenge there.
 */
export const weakAuthentication: Signal<typeof WEAK, typeof weakSection> = {
  name: "auth.weak",
  reasons: WEAK,
  policy: weakSection,
  // the credential's strength, the same for the owner on every request: not against the place
  keepsTrust: ["auth.weak"],
  enabled: (ctx) => ctx.policy.doc.signals.weak_auth.enabled && !ctx.caller.anonymous,
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.weak_auth;
    const strong =
      ctx.caller.amr.some((m) => cfg.strong_amr.includes(m)) ||
      (ctx.caller.acr !== "" && cfg.strong_acr.includes(ctx.caller.acr));
    if (strong) return NOTHING;
    const points =
      cfg.points + (ctx.route.sensitivity === "high" ? cfg.high_sensitivity_points : 0);
    const methods = ctx.caller.amr.length > 0 ? ctx.caller.amr.join(",") : "none";
    return { reasons: [{ code: "auth.weak", points, detail: `amr=${methods}` }] };
  },
};

/**
 * Stale authentication: `auth_time` older than the route's step-up `max_age_seconds`, or the
 * signal's own `max_age_seconds`. A token without auth_time is not stale by this signal.
 */
export const staleAuthentication: Signal<typeof STALE, typeof staleSection> = {
  name: "auth.stale",
  reasons: STALE,
  keepsTrust: ["auth.stale"],
  policy: staleSection,
  enabled: (ctx) => ctx.policy.doc.signals.stale_auth.enabled && ctx.caller.authTime !== undefined,
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.stale_auth;
    const maxAge = ctx.route.rule?.step_up?.max_age_seconds ?? cfg.max_age_seconds;
    const ageSeconds = Math.floor(ctx.now / 1000 - (ctx.caller.authTime ?? 0));
    if (ageSeconds <= maxAge) return NOTHING;
    return {
      reasons: [{ code: "auth.stale", points: cfg.points, detail: `auth_time ${ageSeconds}s ago` }],
    };
  },
};
