import { NOTHING, type Signal } from "./signal.js";

/**
 * Weak authentication: none of the token's `amr` values (nor its `acr`) is listed as strong.
 * High-sensitivity routes add more points, which is what turns a password-only session into a
 * step-up challenge there.
 */
export const weakAuthentication: Signal = {
  name: "auth.weak",
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
export const staleAuthentication: Signal = {
  name: "auth.stale",
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
