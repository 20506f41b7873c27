import type { Decision } from "../access/pipeline.js";
import type { AccessRequest } from "../access/request.js";
import type { VerdictKind } from "../access/verdict.js";

/**
 * One replayed decision as written to the output JSONL (the contract the labelled evaluation
 * reads): what was decided at the request's recorded time, and why.
 */
export interface DecisionRecord {
  readonly request_id: string;
  /** The recorded decision time, RFC 3339. */
  readonly time: string;
  readonly decision: VerdictKind;
  /** In shadow mode: the outcome that was relaxed to allow. */
  readonly shadow_of?: VerdictKind;
  /** How a challenge is rendered (set when the enforced outcome is a challenge). */
  readonly challenge_style?: "step_up" | "header" | "interactive";
  readonly score: number;
  readonly reasons: readonly { readonly code: string; readonly points: number }[];
  readonly route: string;
  readonly tier?: string;
}

/** The output record of one decision. */
export function toDecisionRecord(req: AccessRequest, decision: Decision): DecisionRecord {
  const { verdict, enforced } = decision;
  return {
    request_id: verdict.requestId,
    time: new Date(req.receivedAt).toISOString(),
    decision: verdict.kind,
    ...(verdict.shadowOf === undefined ? {} : { shadow_of: verdict.shadowOf }),
    ...(enforced.kind === "challenge" ? { challenge_style: enforced.style } : {}),
    score: verdict.score,
    reasons: verdict.reasons.map((r) => ({ code: r.code, points: r.points })),
    route: verdict.route ?? "",
    ...(verdict.tier === undefined ? {} : { tier: verdict.tier }),
  };
}
