import type { Mode, TierPolicy } from "../../config/policy-schema.js";
import type { Policy } from "../policy.js";
import type { ResolvedRoute } from "../routes.js";
import type { Verdict } from "../verdict.js";

/** The verdict to serve, the mode that chose it, and the tier the enforced verdict names. */
export interface Shadowed {
  readonly verdict: Verdict;
  readonly mode: Mode;
  readonly tier: TierPolicy | undefined;
}

/**
 * Shadow: in shadow mode (the route's, else the tier's, else the policy's) a verdict other
 * than allow is served as an allow that remembers what it would have been (`shadowOf`); the
 * enforced verdict still goes to the audit, the metrics and the writes after it.
 */
export function shadow(policy: Policy, route: ResolvedRoute, enforced: Verdict): Shadowed {
  const tier = enforced.tier === undefined ? undefined : policy.doc.tiers[enforced.tier];
  const mode = route.rule?.mode ?? tier?.mode ?? policy.doc.mode;
  const verdict: Verdict =
    mode === "shadow" && enforced.kind !== "allow"
      ? { ...enforced, kind: "allow", shadowOf: enforced.kind }
      : enforced;
  return { verdict, mode, tier };
}
