/** The coarse risk level on spans, audit lines and dashboards. */
export type RiskLevel = "low" | "medium" | "high";

/**
 * Bands a 0..100 score: low < 40 <= medium < 80 <= high. Fixed bands, not the tier's own
 * thresholds (the verdict already says what those decided), so levels compare across tiers.
 */
export function riskLevel(score: number): RiskLevel {
  return score >= 80 ? "high" : score >= 40 ? "medium" : "low";
}
