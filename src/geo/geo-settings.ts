import type { Settings } from "../config/settings.js";
import { type GeoReader, openEmbeddedGeoReader, openGeoReader } from "./geo-reader.js";

/** The settings that say where geolocation comes from. */
export type GeoSettings = Pick<Settings, "geo" | "geoCityFiles" | "geoAsnFiles" | "geoCacheSize">;

/**
 * Opens the geolocation databases the settings ask for: the bundled ones (`embedded`, with
 * RISKGATE_GEO_ASN_FILES replacing the bundled ASN table when set), the named files (`files`),
 * or none (`off`: undefined). `serve` and `replay` both open theirs here, so a replay decides
 * with the data the server decided with.
 */
export async function openGeoFromSettings(settings: GeoSettings): Promise<GeoReader | undefined> {
  const files = (list: string) =>
    list
      .split(",")
      .map((f) => f.trim())
      .filter((f) => f !== "");
  if (settings.geo === "off") return undefined;
  if (settings.geo === "embedded") {
    return openEmbeddedGeoReader({
      cacheSize: settings.geoCacheSize,
      asnFiles: files(settings.geoAsnFiles),
    });
  }
  return openGeoReader({
    cityFiles: files(settings.geoCityFiles),
    asnFiles: files(settings.geoAsnFiles),
    cacheSize: settings.geoCacheSize,
  });
}
