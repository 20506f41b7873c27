import type { GeoLocation, GeoReader } from "../../src/geo/geo-reader.js";

/** A geo reader over a fixed table of addresses (unknown addresses have no location). */
export function fixedGeo(
  places: Readonly<Record<string, GeoLocation>>,
  data: GeoReader["data"] = { city: true, asn: false },
): GeoReader {
  return { lookup: (ip) => places[ip], description: "test places", data, close() {} };
}
