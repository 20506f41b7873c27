/** A point on the globe in decimal degrees (WGS84 latitude/longitude). */
export interface GeoPoint {
  readonly latitude: number;
  readonly longitude: number;
}

/**
 * Mean Earth radius (IUGG). A sphere is within about 0.5% of the ellipsoid everywhere, far
 * finer than IP geolocation itself, which is off by tens of kilometres.
 */
export const EARTH_RADIUS_KM = 6371.0088;

const RAD = Math.PI / 180;

/** Great-circle distance in km between two points (haversine formula). */
export function distanceKm(a: GeoPoint, b: GeoPoint): number {
  const dLat = (b.latitude - a.latitude) * RAD;
  const dLon = (b.longitude - a.longitude) * RAD;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.latitude * RAD) * Math.cos(b.latitude * RAD) * Math.sin(dLon / 2) ** 2;
  // min() guards against h creeping above 1 by rounding for antipodal points.
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, h)));
}
