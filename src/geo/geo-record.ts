/**
 * Mapping of mmdb records to riskgate's flat `GeoLocation`. The mmdb container is the same
 * for every vendor; the record shapes differ:
 * - GeoIP2 / GeoLite2 City and Country, and DB-IP's own downloads (`DBIP-City-Lite`, which
 *   copy that layout): nested `country.iso_code`, `city.names.en`, `location.{latitude,
 *   longitude,accuracy_radius}`; Enterprise adds `traits.autonomous_system_*`.
 * - ip-location-db builds (the npm `@ip-location-db/*-mmdb` packages, types `city ipv4`,
 *   `country ipv6`, ...): flat `country_code`, `city`, `latitude`, `longitude`.
 * - ASN databases (GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite, ip-location-db asn):
 *   `autonomous_system_number`, `autonomous_system_organization`.
 */

/** Where an IP address is, as far as the databases know. Every field may be missing. */
export interface GeoLocation {
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country?: string;
  readonly city?: string;
  readonly latitude?: number;
  readonly longitude?: number;
  /**
   * "lat,lon" to 4 decimals (about 11 m), as the impossible-travel signal stores a sighting:
   * formatted once per decoded record (the reader caches locations per IP), since number
   * formatting on every Check costs more than the rest of the signal.
   */
  readonly coordinates?: string;
  /** GeoIP2's accuracy radius; DB-IP Lite has none. */
  readonly accuracyKm?: number;
  readonly asn?: number;
  readonly asOrg?: string;
}

/** The record layouts riskgate understands. */
export type MmdbSchema = "geoip2" | "flat" | "asn";

/**
 * The schema a database's `metadata.databaseType` announces, or undefined when the name is
 * not one we know (the record shape then decides, see `toGeoLocation`).
 */
export function schemaOfDatabaseType(databaseType: string): MmdbSchema | undefined {
  const t = databaseType.toLowerCase();
  if (/\b(asn|isp)\b|-asn|-isp/.test(t)) return "asn";
  if (/^(geoip2|geolite2|dbip)-/.test(t)) return "geoip2";
  if (/^(city|country) ipv[46]$/.test(t)) return "flat";
  return undefined;
}

type Rec = Readonly<Record<string, unknown>>;

function obj(v: unknown): Rec | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Rec) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** ISO country codes only; `ZZ` and the like mean "unknown" in some builds. */
function country(v: unknown): string | undefined {
  const s = str(v)?.toUpperCase();
  return s !== undefined && /^[A-Z]{2}$/.test(s) && s !== "ZZ" && s !== "XX" ? s : undefined;
}

/** GeoIP2 `names` maps: English first, else any language the database has. */
function name(v: unknown): string | undefined {
  const names = obj(obj(v)?.names);
  if (names === undefined) return undefined;
  return (
    str(names.en) ??
    Object.values(names)
      .map(str)
      .find((n) => n !== undefined)
  );
}

function coordinates(
  lat: unknown,
  lon: unknown,
): Pick<GeoLocation, "latitude" | "longitude" | "coordinates"> {
  const latitude = num(lat);
  const longitude = num(lon);
  if (latitude === undefined || longitude === undefined) return {};
  if (Math.abs(latitude) > 90 || Math.abs(longitude) > 180) return {};
  return { latitude, longitude, coordinates: `${latitude.toFixed(4)},${longitude.toFixed(4)}` };
}

function asnFields(asn: unknown, org: unknown): { asn?: number; asOrg?: string } {
  const n = num(asn);
  if (n === undefined || !Number.isInteger(n) || n < 0) return {};
  const asOrg = str(org);
  return asOrg === undefined ? { asn: n } : { asn: n, asOrg };
}

function fromGeoip2(r: Rec): GeoLocation {
  const location = obj(r.location);
  const traits = obj(r.traits);
  return {
    country: country(obj(r.country)?.iso_code) ?? country(obj(r.registered_country)?.iso_code),
    city: name(r.city),
    ...coordinates(location?.latitude, location?.longitude),
    accuracyKm: num(location?.accuracy_radius),
    ...asnFields(traits?.autonomous_system_number, traits?.autonomous_system_organization),
  };
}

function fromFlat(r: Rec): GeoLocation {
  return {
    country: country(r.country_code),
    city: str(r.city),
    ...coordinates(r.latitude, r.longitude),
  };
}

function fromAsn(r: Rec): GeoLocation {
  return asnFields(r.autonomous_system_number, r.autonomous_system_organization);
}

/** The schema a record's own shape shows. */
function sniff(r: Rec): MmdbSchema | undefined {
  if ("autonomous_system_number" in r) return "asn";
  if ("country_code" in r || typeof r.latitude === "number") return "flat";
  if (obj(r.country) ?? obj(r.location) ?? obj(r.city) ?? obj(r.registered_country)) {
    return "geoip2";
  }
  return undefined;
}

/** Drops undefined fields so results compare and serialise cleanly. */
function compact(g: GeoLocation): GeoLocation | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(g)) if (v !== undefined) out[k] = v;
  return Object.keys(out).length === 0 ? undefined : (Object.freeze(out) as GeoLocation);
}

/**
 * Maps one mmdb record to a `GeoLocation` (frozen), or undefined when it holds nothing we use.
 * The record's own shape decides, so a build with an unfamiliar `databaseType` still maps;
 * `schema` (from the database type) is the fallback for records whose shape shows nothing.
 */
export function toGeoLocation(record: unknown, schema?: MmdbSchema): GeoLocation | undefined {
  const r = obj(record);
  if (r === undefined) return undefined;
  const shape = sniff(r);
  switch (shape === undefined ? schema : shape) {
    case "geoip2":
      return compact(fromGeoip2(r));
    case "flat":
      return compact(fromFlat(r));
    case "asn":
      return compact(fromAsn(r));
    default:
      return undefined;
  }
}
