import type { PolicyDocument } from "../../config/policy-schema.js";
import type { GeoReader } from "../../geo/geo-reader.js";

/** Signals the policy turns on that the server has no data for. */
export interface SignalDataGaps {
  /**
   * Configured on purpose (a hosting ASN list, a tier's country lists) and unable to work: the
   * policy must be refused, or an operator reads "loaded" and believes a protection is on.
   */
  readonly missing: readonly string[];
  /** On by default and idle without geolocation (RISKGATE_GEO=off): worth a warning. */
  readonly idle: readonly string[];
}

/**
 * Which of the policy's signals cannot see their data with this geo reader. A signal that
 * lacks its data scores nothing, silently, which is how `signals.hosting_asn` did nothing on
 * the embedded default (issue 14, defect 2).
 */
export function signalDataGaps(doc: PolicyDocument, geo: GeoReader | undefined): SignalDataGaps {
  const missing: string[] = [];
  const idle: string[] = [];
  const s = doc.signals;
  if (s.hosting_asn.enabled && s.hosting_asn.file !== undefined && geo?.data.asn !== true) {
    missing.push(
      "signals.hosting_asn needs ASN data (RISKGATE_GEO=embedded ships it; with RISKGATE_GEO=files set RISKGATE_GEO_ASN_FILES)",
    );
  }
  const city = geo?.data.city === true;
  if (s.geo.enabled && !city) {
    for (const [name, tier] of Object.entries(doc.tiers)) {
      if (tier.countries !== undefined) {
        missing.push(
          `tiers.${name}.countries needs geolocation (RISKGATE_GEO is off or has no city data)`,
        );
      }
    }
  }
  if (!city) {
    if (s.impossible_travel.enabled) idle.push("signals.impossible_travel");
    if (s.new_country.enabled) idle.push("signals.new_country");
    if (s.geo.enabled && s.geo.unknown_location_points > 0) idle.push("signals.geo");
  }
  return { missing, idle };
}
