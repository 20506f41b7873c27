import type { Policy } from "../policy.js";
import type { Reason } from "../reasons.js";
import type { DecisionContext, Verdict } from "../verdict.js";

/**
 * What a machine token gets where a person would be challenged. Nothing can log in again or
 * pass a page for a client-credentials grant, so a challenge would only break the integration.
 * By severity:
 * - the route asks for a recent interactive login (`auth.max_age`: `step_up.max_age_seconds`),
 *   which no machine can ever show: deny, cause risk, so its operator reads why at once;
 * - otherwise (a score in the challenge band, or a rule's `challenge`): throttle, 429 with
 *   `decisions.machine.retry_after_seconds`, since a machine retries after Retry-After and
 *   the findings that put it there (a burst, a new egress next to others) fade or are
 *   learnt. A score at `deny_at` was denied before this.
 * Either way a 0-point `risk.no_challenge` reason says so on the verdict and the audit line.
 */
export function machineRefusal(policy: Policy, base: DecisionContext): Verdict {
  const unanswerable = base.reasons.some((r) => r.code === "auth.max_age");
  const note: Reason = {
    code: "risk.no_challenge",
    points: 0,
    detail: unanswerable
      ? "machine client: the route asks for a recent login; deny instead of a challenge"
      : "machine client: throttle instead of a challenge",
  };
  const reasons = [...base.reasons, note];
  const ctx = { ...base, reasons };
  if (unanswerable) return { ...ctx, kind: "deny", cause: "risk" };
  return {
    ...ctx,
    kind: "throttle",
    retryAfterSeconds: policy.doc.decisions.machine.retry_after_seconds,
  };
}
