import type { FailureMode } from "../config/policy-schema.js";
import { type Caller, grants } from "./license.js";
import type { Reason } from "./reasons.js";
import type { AccessRequest } from "./request.js";
import type { ResolvedRoute } from "./routes.js";
import { evaluateRules } from "./rules/rules.js";
import type { SignalContext } from "./signals/signal.js";
import type { DecisionContext, Verdict } from "./verdict.js";

/** Methods `safe_methods_only` lets through when state is unavailable (RFC 9110 safe methods). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The sum of the reasons' points, clamped to 0..100. */
export function scoreOf(reasons: readonly Reason[]): number {
  let sum = 0;
  for (const r of reasons) sum += r.points;
  return Math.max(0, Math.min(100, sum));
}

/** What scoring needs from the request's signal context (the signals' findings come apart). */
export type RiskInput = Pick<
  SignalContext,
  "policy" | "req" | "caller" | "route" | "tierName" | "tier" | "env" | "location" | "clientClass"
>;

/** A throttle a signal asked for: it beats any score. */
export interface Throttle {
  readonly retryAfterSeconds: number;
  readonly reason: Reason;
}

/**
 * Turns the findings into a verdict. License denials and hard blocks were decided before this
 * (pipeline). Then the policy's `rules:` table (first enforcing match): a rule's deny beats
 * everything here; a signal's throttle beats a rule's other actions; a rule's throttle,
 * challenge or allow beats the score (an allow still meets a route's step-up `max_age`).
 * Without a rule, the score decides with the tier's thresholds for the route's sensitivity:
 * deny_at, then a route's step-up `max_age_seconds` that the caller's `auth_time` does not meet
 * (RFC 9470 `max_age`: challenged whatever the score), then challenge_at (or a downgrade when
 * the tier has one that still grants the route), else allow.
 */
export function decideRisk(
  input: RiskInput,
  found: readonly Reason[],
  throttle?: Throttle,
): Verdict {
  const { policy, route, tier } = input;
  const signalled = throttle ? [...found, throttle.reason] : found;
  const score = scoreOf(signalled);
  const ruled = evaluateRules(input, signalled, score);
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
    const tooOld = authTooOld(input);
    if (tooOld !== undefined) {
      return challenge(input, context(input, [...reasons, tooOld], score, input.tierName), reasons);
    }
    return { ...base, kind: "allow" };
  }
  const limits = tier.risk.by_sensitivity[route.sensitivity] ?? tier.risk;
  if (score >= limits.deny_at) return { ...base, kind: "deny", cause: "risk" };
  const tooOld = authTooOld(input);
  if (tooOld !== undefined) {
    return challenge(input, context(input, [...reasons, tooOld], score, input.tierName), reasons);
  }
  if (score < limits.challenge_at) return { ...base, kind: "allow" };

  const downgrade = tier.downgrade_to;
  const lower = downgrade === undefined ? undefined : policy.doc.tiers[downgrade];
  if (
    downgrade !== undefined &&
    lower !== undefined &&
    grants(lower, input.caller, route.rule?.entitlement) &&
    (route.rule?.tiers === undefined || route.rule.tiers.includes(downgrade))
  ) {
    const note: Reason = { code: "risk.downgraded", points: 0, detail: `to ${downgrade}` };
    return { ...context(input, [...reasons, note], score, downgrade), kind: "allow" };
  }

  return challenge(input, base, reasons);
}

/** A step-up challenge with the route's (else the policy's) RFC 9470 acr_values and max_age. */
function challenge(input: RiskInput, base: DecisionContext, reasons: readonly Reason[]): Verdict {
  const { policy, route } = input;
  const cfg = policy.doc.decisions.challenge;
  const stale = reasons.some((r) => r.code === "auth.stale");
  const maxAge =
    route.rule?.step_up?.max_age_seconds ??
    cfg.max_age_seconds ??
    (stale ? policy.doc.signals.stale_auth.max_age_seconds : undefined);
  return {
    ...base,
    kind: "challenge",
    acrValues: route.rule?.step_up?.acr_values ?? cfg.acr_values,
    ...(maxAge === undefined ? {} : { maxAge }),
    style: cfg.style,
  };
}

/**
 * The route's step-up `max_age_seconds` is RFC 9470's `max_age`: the last active
 * authentication must be at most that old. A caller whose `auth_time` is older, or who
 * carries no `auth_time` to show (the route asks for a recent login the token cannot prove),
 * gets an `auth.max_age` reason, and the decision challenges.
 */
function authTooOld(input: RiskInput): Reason | undefined {
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
  input: RiskInput,
  reasons: readonly Reason[],
  score: number,
  tierName: string,
): DecisionContext {
  return decisionContext(input.req.id, input.route, input.caller, tierName, score, reasons);
}

/**
 * The decision context of a Check whose caller is known (`tier` undefined: none yet). Built field
 * by field rather than with conditional spreads: this runs on every Check.
 */
export function decisionContext(
  requestId: string,
  route: Pick<ResolvedRoute, "name" | "rule">,
  caller: Pick<Caller, "subject" | "org">,
  tier: string | undefined,
  score: number,
  reasons: readonly Reason[],
): DecisionContext {
  const out: { -readonly [K in keyof DecisionContext]: DecisionContext[K] } = {
    requestId,
    score,
    reasons,
    subject: caller.subject,
    route: route.name,
  };
  if (tier !== undefined) out.tier = tier;
  if (caller.org !== "") out.org = caller.org;
  const entitlement = route.rule?.entitlement;
  if (entitlement !== undefined) out.entitlement = entitlement;
  return out;
}

/** The outcome a failure mode gives when state or time ran out. */
export function failureVerdict(
  mode: FailureMode,
  req: AccessRequest,
  base: DecisionContext,
): Verdict {
  return failureLetsThrough(mode, req)
    ? { ...base, kind: "allow" }
    : { ...base, kind: "deny", cause: "failure" };
}

/** True when a failure mode lets this request carry on without the failed component. */
export function failureLetsThrough(mode: FailureMode, req: AccessRequest): boolean {
  return mode === "open" || (mode === "safe_methods_only" && SAFE_METHODS.has(req.method));
}
