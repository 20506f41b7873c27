import type { FailureMode, TierPolicy } from "../config/policy-schema.js";
import type { Policy } from "./policy.js";
import type { AccessRequest } from "./request.js";
import type { ResolvedRoute } from "./routes.js";
import type { DecisionContext, Verdict } from "./verdict.js";

/** Methods `safe_methods_only` lets through when state is unavailable (RFC 9110 safe methods). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The failure mode that applies: the route's, else the tier's, else the policy's. */
export function failureModeOf(
  policy: Policy,
  tier: TierPolicy | undefined,
  route: ResolvedRoute,
): FailureMode {
  return route.rule?.failure ?? tier?.failure ?? policy.doc.failure.mode;
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
