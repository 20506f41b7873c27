/**
 * One step of a browser challenge, as metrics count it: `issued` (a challenge was signed for
 * an interactive verdict), `passed` (the clearance was set), `failed` (a wrong answer),
 * `expired`, `invalid` (forged, or bound to another network or browser), `reused` (its nonce
 * was spent already), `unavailable` (siteverify or the store could not answer; the route's
 * failure mode decided).
 */
export type ChallengeOutcome =
  | "issued"
  | "passed"
  | "failed"
  | "expired"
  | "invalid"
  | "reused"
  | "unavailable";
