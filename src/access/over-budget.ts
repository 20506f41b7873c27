import type { FailureMode } from "../config/policy-schema.js";
import { failureVerdict } from "./failure.js";
import type { Reason } from "./reasons.js";
import type { AccessRequest } from "./request.js";
import type { DecisionContext, Verdict } from "./verdict.js";

/** What the decision had reached when its time budget ran out. */
export interface OverBudget {
  readonly req: AccessRequest;
  readonly route: string | undefined;
  readonly budgetMs: number;
  /**
   * The caller's decision context once it was identified and licensed (both are settled
   * together: the licence check takes no time), so the verdict names it as any other does.
   * Absent while the identify stage still waits, in practice for keys.
   */
  readonly identified: DecisionContext | undefined;
  /** The failure mode of the route (else tier, else policy) for the stages after licence. */
  readonly failureMode: FailureMode;
}

/**
 * The verdict of a decision that ran out of its time budget. A failure mode stands in only for
 * the stages after licence (store, webhook): it may carry a known caller on without its risk
 * signals, never an unknown one past identity. Before the caller is verified, the only thing the
 * request could have waited on is the issuer's keys, so it is refused as if they were
 * unavailable, on every route and whatever its failure mode: a token signed by a stranger's key
 * with a kid that makes riskgate refetch the JWKS must not be let through by a slow issuer.
 */
export function overBudgetVerdict(at: OverBudget): Verdict {
  const base = { requestId: at.req.id, score: 0, route: at.route };
  if (at.identified === undefined) {
    const reason: Reason = {
      code: "identity.keys_unavailable",
      points: 0,
      detail: `keys not available within the ${at.budgetMs}ms budget`,
    };
    return { ...base, reasons: [reason], kind: "deny", cause: "authentication" };
  }
  const reason: Reason = { code: "failure.budget", points: 0, detail: `${at.budgetMs}ms` };
  return failureVerdict(at.failureMode, at.req, { ...at.identified, score: 0, reasons: [reason] });
}
