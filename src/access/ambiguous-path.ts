import type { PolicyDocument } from "./policy.js";
import type { Reason } from "./reasons.js";
import type { AccessRequest } from "./request.js";
import type { DecisionContext, Verdict } from "./verdict.js";

/**
 * The refusal of a request whose path may mean something else upstream (the transport says why
 * in `pathAmbiguity`), unless the policy takes paths as Envoy passes them. Routes match on the
 * normalised path; when the upstream may resolve the same bytes to another one (`..%2f`, `\`,
 * `..;`), a route's entitlement or sensitivity would guard the wrong resource, so the default
 * is to decide nothing about it. Undefined when the request goes on to be decided.
 */
export function refuseAmbiguousPath(
  doc: Pick<PolicyDocument, "ambiguous_paths">,
  req: AccessRequest,
  base: DecisionContext,
): Verdict | undefined {
  if (req.pathAmbiguity === undefined || doc.ambiguous_paths === "as_envoy") return undefined;
  const reason: Reason = { code: "request.ambiguous_path", points: 0, detail: req.pathAmbiguity };
  return { ...base, reasons: [reason], score: 0, kind: "deny", cause: "malformed" };
}
