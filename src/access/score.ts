import type { Reason } from "./reasons.js";

/** The risk score of a set of reasons: their points summed, clamped to 0..100. */
export function scoreOf(reasons: readonly Reason[]): number {
  let sum = 0;
  for (const r of reasons) sum += r.points;
  return Math.max(0, Math.min(100, sum));
}
