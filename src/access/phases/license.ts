import type { TierPolicy } from "../../config/policy-schema.js";
import { checkLicense } from "../license.js";
import { type DecisionContext, decisionContext } from "../verdict.js";
import type { Identified } from "./identify.js";
import { deny, next, type Phase } from "./phase.js";

/** The caller with the tier its license gives it on this route. */
export interface Licensed extends Identified {
  /** The decision context so far (who, which route), for any verdict from here on. */
  readonly who: DecisionContext;
  readonly tierName: string;
  readonly tier: TierPolicy;
}

/** License: the caller's tier must exist and grant the route's entitlement, else a deny. */
export const license: Phase<Identified, Licensed> = {
  name: "license",
  run(check, identified) {
    const { req, route, snapshot } = check;
    const { caller } = identified;
    const who = decisionContext(req.id, route, caller, caller.tier || undefined, 0, []);
    const outcome = checkLicense(snapshot.policy, caller, route);
    check.trace?.license?.(outcome);
    if (!outcome.ok) return deny(who, "license", outcome.reason);
    const { identity } = identified;
    return next({ caller, identity, who, tierName: outcome.tierName, tier: outcome.tier });
  },
};
