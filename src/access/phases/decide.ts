import { grants } from "../license.js";
import type { Reason } from "../reasons.js";
import type { SignalContext } from "../signals/signal.js";
import { type DecisionContext, decisionContext, type Verdict } from "../verdict.js";
import { machineRefusal } from "./machine-refusal.js";
import { ends, type Phase } from "./phase.js";
import type { Ruled } from "./rules.js";

/** What deciding reads of the request's signal context. */
type DecideInput = Pick<
  SignalContext,
  "policy" | "req" | "caller" | "route" | "tierName" | "tier" | "clientClass"
>;

/**
 * Decide: the findings and the rules' verdict become one verdict. License denials and hard
 * blocks ended the decision earlier. A rule's deny beats everything here; a signal's throttle
 * beats a rule's other actions; a rule's throttle, challenge or allow beats the score (an allow
 * still meets a route's step-up `max_age`). Without a rule, the score decides with the tier's
 * thresholds for the route's sensitivity: deny_at, then a route's step-up `max_age_seconds` that
 * the caller's `auth_time` does not meet (RFC 9470 `max_age`: challenged whatever the score),
 * then challenge_at (or a downgrade when the tier has one that still grants the route), else
 * allow.
 */
export const decide: Phase<Ruled, never> = {
  name: "decide",
  run: (_check, ruled) => ends(verdictOf(ruled)),
};

function verdictOf({ ctx: input, reasons: signalled, score, throttle, ruled }: Ruled): Verdict {
  const hit = ruled.hit;
  const reasons =
    ruled.shadow.length === 0 && hit === undefined
      ? signalled
      : hit === undefined
        ? [...signalled, ...ruled.shadow]
        : [...signalled, ...ruled.shadow, hit.reason];
  const base = context(input, reasons, score, input.tierName);
  if (hit?.rule.action === "deny") return { ...base, kind: "deny", cause: "risk" };
  if (throttle) {
    return { ...base, kind: "throttle", retryAfterSeconds: throttle.retryAfterSeconds };
  }
  if (hit !== undefined) {
    const { rule } = hit;
    if (rule.action === "throttle") {
      return { ...base, kind: "throttle", retryAfterSeconds: rule.retry_after_seconds };
    }
    if (rule.action === "challenge") return challenge(input, base, reasons);
    return allowUnlessTooOld(input, base, reasons, score);
  }
  const { route, tier } = input;
  const limits = tier.risk.by_sensitivity[route.sensitivity] ?? tier.risk;
  if (score >= limits.deny_at) return { ...base, kind: "deny", cause: "risk" };
  if (score < limits.challenge_at) return allowUnlessTooOld(input, base, reasons, score);
  const tooOld = authTooOld(input);
  if (tooOld !== undefined) {
    return challenge(input, context(input, [...reasons, tooOld], score, input.tierName), reasons);
  }
  return downgraded(input, reasons, score) ?? challenge(input, base, reasons);
}

/** An allow, or a challenge when the route's step-up `max_age` is not met. */
function allowUnlessTooOld(
  input: DecideInput,
  base: DecisionContext,
  reasons: readonly Reason[],
  score: number,
): Verdict {
  const tooOld = authTooOld(input);
  if (tooOld === undefined) return { ...base, kind: "allow" };
  return challenge(input, context(input, [...reasons, tooOld], score, input.tierName), reasons);
}

/** Medium risk served as the tier's `downgrade_to` tier, when that tier still grants the route. */
function downgraded(
  input: DecideInput,
  reasons: readonly Reason[],
  score: number,
): Verdict | undefined {
  const { policy, route, tier } = input;
  const downgrade = tier.downgrade_to;
  const lower = downgrade === undefined ? undefined : policy.doc.tiers[downgrade];
  if (
    downgrade === undefined ||
    lower === undefined ||
    !grants(lower, input.caller, route.rule?.entitlement) ||
    (route.rule?.tiers !== undefined && !route.rule.tiers.includes(downgrade))
  ) {
    return undefined;
  }
  const note: Reason = { code: "risk.downgraded", points: 0, detail: `to ${downgrade}` };
  return { ...context(input, [...reasons, note], score, downgrade), kind: "allow" };
}

/**
 * A step-up challenge with the route's (else the policy's) RFC 9470 acr_values and max_age; a
 * machine token, which cannot answer one, gets what {@link machineRefusal} makes of it.
 */
function challenge(input: DecideInput, base: DecisionContext, reasons: readonly Reason[]): Verdict {
  const { policy, route } = input;
  if (input.clientClass === "machine") return machineRefusal(policy, base);
  const cfg = policy.doc.decisions.challenge;
  const stale = reasons.some((r) => r.code === "auth.stale");
  const maxAge =
    route.rule?.step_up?.max_age_seconds ??
    cfg.max_age_seconds ??
    (stale ? policy.doc.signals.stale_auth.max_age_seconds : undefined);
  const style = route.rule?.challenge_style ?? cfg.style;
  return {
    ...base,
    kind: "challenge",
    acrValues: route.rule?.step_up?.acr_values ?? cfg.acr_values,
    ...(maxAge === undefined ? {} : { maxAge }),
    // only a browser can pass a page; an API client keeps the step-up it can answer
    style: style === "interactive" && !isBrowser(input) ? "step_up" : style,
  };
}

/**
 * A navigation of a person's browser, the only request that can render the challenge page and
 * come back: a GET or HEAD that asks for HTML. A person's session (`browser` class) also calls
 * the API with fetch or from a native app, where a page cannot be shown, so the class alone
 * is not enough. A machine token is never a browser.
 */
export function isBrowser(input: Pick<SignalContext, "req" | "clientClass">): boolean {
  if (input.clientClass === "machine") return false;
  const { req } = input;
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  return /(^|[\s,])text\/html\b/i.test(req.headers.get("accept") ?? "");
}

/**
 * The route's step-up `max_age_seconds` is RFC 9470's `max_age`: the last active
 * authentication must be at most that old. A caller whose `auth_time` is older, or who
 * carries no `auth_time` to show (the route asks for a recent login the token cannot prove),
 * gets an `auth.max_age` reason, and the decision challenges.
 */
function authTooOld(input: DecideInput): Reason | undefined {
  const maxAge = input.route.rule?.step_up?.max_age_seconds;
  if (maxAge === undefined || input.caller.anonymous) return undefined;
  const authTime = input.caller.authTime;
  if (authTime === undefined) {
    return { code: "auth.max_age", points: 0, detail: `no auth_time; max_age ${maxAge}s` };
  }
  const age = Math.floor(input.req.receivedAt / 1000 - authTime);
  if (age <= maxAge) return undefined;
  return { code: "auth.max_age", points: 0, detail: `auth_time ${age}s ago; max_age ${maxAge}s` };
}

function context(
  input: DecideInput,
  reasons: readonly Reason[],
  score: number,
  tierName: string,
): DecisionContext {
  return decisionContext(input.req.id, input.route, input.caller, tierName, score, reasons);
}
