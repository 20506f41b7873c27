import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RiskgateError } from "../../src/errors.js";
import { parseAsnRanges } from "../../src/geo/asn-ranges.js";
import {
  ASN_ATTRIBUTION,
  DBIP_ATTRIBUTION,
  type GeoReader,
  openEmbeddedGeoReader,
  openGeoReader,
} from "../../src/geo/geo-reader.js";
import { parseIp } from "../../src/geo/ip-address.js";
import { type MmdbValue, writeMmdb } from "../fixtures/geo/mmdb-writer.js";

const record = (name: string): MmdbValue =>
  JSON.parse(readFileSync(new URL(`../fixtures/geo/${name}`, import.meta.url), "utf8"));

const NOT_LOCATABLE = [
  "10.0.0.1",
  "192.168.1.1",
  "172.16.5.5",
  "127.0.0.1",
  "100.64.0.1",
  "169.254.169.254",
  "0.0.0.0",
  "255.255.255.255",
  "::1",
  "::",
  "fe80::1",
  "fc00::1",
  "2001:db8::1",
  "::ffff:10.0.0.1",
  "",
  "junk",
  "999.1.1.1",
  "1.2.3",
  "8.8.8.8/24",
  "[2001:4860:4860::8888]",
];

describe("the embedded DB-IP City Lite database", () => {
  let geo: GeoReader;
  beforeAll(async () => {
    geo = await openEmbeddedGeoReader();
  });
  afterAll(() => geo.close());

  // Addresses whose registration and location have not moved in years; DB-IP updates monthly.
  it.each([
    ["8.8.8.8", "US"],
    ["1.1.1.1", "AU"],
    ["193.0.6.139", "NL"], // RIPE NCC, Amsterdam
    ["2001:67c:2e8:22::c100:68b", "NL"], // RIPE NCC over IPv6
  ])("places %s in %s with coordinates", (ip, country) => {
    const found = geo.lookup(ip);
    expect(found?.country).toBe(country);
    expect(found?.latitude).toBeTypeOf("number");
    expect(found?.longitude).toBeTypeOf("number");
    expect(found?.city).toBeTypeOf("string");
    expect(found?.accuracyKm).toBeUndefined(); // DB-IP Lite has no accuracy radius
  });

  it("answers for a well-known IPv6 address from the IPv6 file", () => {
    const found = geo.lookup("2001:4860:4860::8888");
    expect(found?.country).toMatch(/^[A-Z]{2}$/);
    expect(Math.abs(found?.latitude ?? 999)).toBeLessThanOrEqual(90);
    expect(Math.abs(found?.longitude ?? 999)).toBeLessThanOrEqual(180);
  });

  it("answers IPv4-mapped IPv6 as the IPv4 address", () => {
    expect(geo.lookup("::ffff:8.8.8.8")).toEqual(geo.lookup("8.8.8.8"));
  });

  it.each(NOT_LOCATABLE)("gives undefined for %j (private, special or not an address)", (ip) => {
    expect(geo.lookup(ip)).toBeUndefined();
  });

  it("serves repeated lookups from its cache (the same frozen object)", () => {
    const first = geo.lookup("9.9.9.9");
    expect(first).toBeDefined();
    expect(Object.isFrozen(first)).toBe(true);
    expect(geo.lookup("9.9.9.9")).toBe(first);
  });

  // the embedded default once had no ASN data, so signals.hosting_asn silently never fired
  it.each([
    ["8.8.8.8", 15169],
    ["1.1.1.1", 13335],
    ["52.94.76.10", 16509], // Amazon (AWS us-east-1)
    ["2001:4860:4860::8888", 15169],
  ])("knows the ASN of %s (AS%i) from @ip-location-db/asn", (ip, asn) => {
    const found = geo.lookup(ip);
    expect(found?.asn).toBe(asn);
    expect(found?.asOrg).toBeTypeOf("string");
    expect(found?.country).toMatch(/^[A-Z]{2}$/); // merged with the city record
  });

  it("describes its files and carries DB-IP's attribution", () => {
    expect(geo.description).toContain(ASN_ATTRIBUTION);
    expect(geo.description).toMatch(/dbip-city-ipv4\.mmdb \(city ipv4, built \d{4}-\d\d-\d\d\)/);
    expect(geo.description).toMatch(/dbip-city-ipv6\.mmdb \(city ipv6, built/);
    expect(geo.description).toContain(DBIP_ATTRIBUTION);
  });
});

describe("the ip-location-db ASN table", () => {
  const table = parseAsnRanges(
    [
      '16777216,16777471,13335,"Cloudflare, Inc."',
      "16778240,16779263,38803,Gtelecom Pty Ltd",
      'junk,line,x,"y"',
      '16779264,16779264,64500,"Quote ""Co"""',
      "",
    ].join("\n"),
    "2001:200::,2001:200:ffff:ffff:ffff:ffff:ffff:ffff,2500,WIDE Project\n",
  );
  const at = (ip: string) => {
    const addr = parseIp(ip);
    return addr === undefined ? undefined : table.lookup(addr);
  };

  it("finds the range holding an address, and nothing between ranges", () => {
    expect(table.size).toBe(4);
    expect(at("1.0.0.0")).toEqual({ asn: 13335, asOrg: "Cloudflare, Inc." });
    expect(at("1.0.0.255")).toEqual({ asn: 13335, asOrg: "Cloudflare, Inc." });
    expect(at("1.0.1.0")).toBeUndefined();
    expect(at("1.0.7.255")).toEqual({ asn: 38803, asOrg: "Gtelecom Pty Ltd" });
    expect(at("1.0.8.0")).toEqual({ asn: 64500, asOrg: 'Quote "Co"' });
    expect(at("0.255.255.255")).toBeUndefined();
    expect(at("2001:200:1::1")).toEqual({ asn: 2500, asOrg: "WIDE Project" });
    expect(at("2001:201::1")).toBeUndefined();
  });
});

describe("openGeoReader with GeoIP2/GeoLite2-shaped databases", () => {
  let dir: string;
  let city: string;
  let asn: string;
  let flatV4: string;
  let flatV6: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "riskgate-geo-"));
    // GeoLite2 layout: one IPv6 tree that holds IPv4 under ::/96.
    city = writeMmdb(join(dir, "GeoLite2-City.mmdb"), {
      databaseType: "GeoLite2-City",
      ipVersion: 6,
      networks: {
        "81.2.69.0/24": record("geoip2-city-record.json"),
        "89.160.20.0/24": record("geoip2-country-record.json"),
        "2a02:d280::/29": record("geoip2-enterprise-record.json"),
      },
    });
    asn = writeMmdb(join(dir, "GeoLite2-ASN.mmdb"), {
      databaseType: "GeoLite2-ASN",
      ipVersion: 6,
      networks: {
        "81.2.69.0/24": record("geolite2-asn-record.json"),
        "1.128.0.0/11": {
          autonomous_system_number: 1221,
          autonomous_system_organization: "Telstra",
        },
      },
    });
    // ip-location-db layout: split files with flat records.
    flatV4 = writeMmdb(join(dir, "city-ipv4.mmdb"), {
      databaseType: "city ipv4",
      ipVersion: 4,
      networks: {
        "2.0.0.0/8": { country_code: "FR", city: "Paris", latitude: 48.85, longitude: 2.35 },
        "42.0.0.0/8": { country_code: "KR", city: "Seoul", latitude: 37.57, longitude: 126.98 },
      },
    });
    flatV6 = writeMmdb(join(dir, "city-ipv6.mmdb"), {
      databaseType: "city ipv6",
      ipVersion: 6,
      networks: {
        "2a01::/16": { country_code: "DE", city: "Berlin", latitude: 52.52, longitude: 13.4 },
      },
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("merges a City and an ASN database", async () => {
    const geo = await openGeoReader({ cityFiles: [city], asnFiles: [asn] });
    try {
      expect(geo.lookup("81.2.69.160")).toEqual({
        country: "GB",
        city: "London",
        latitude: 51.5142,
        longitude: -0.0931,
        coordinates: "51.5142,-0.0931",
        accuracyKm: 10,
        asn: 20712,
        asOrg: "Andrews & Arnold Ltd",
      });
      expect(geo.lookup("::ffff:81.2.69.160")?.asn).toBe(20712);
      expect(geo.lookup("89.160.20.1")).toEqual({ country: "DE" });
      expect(geo.lookup("1.130.0.1")).toEqual({ asn: 1221, asOrg: "Telstra" });
      expect(geo.lookup("2a02:d280:1::1")).toMatchObject({ country: "US", asn: 15169 });
      expect(geo.lookup("8.8.8.8")).toBeUndefined();
      expect(geo.description).toBe(
        "GeoLite2-City.mmdb (GeoLite2-City, built 2023-11-14), GeoLite2-ASN.mmdb (GeoLite2-ASN, built 2023-11-14)",
      );
    } finally {
      geo.close();
    }
  });

  it("routes each family to the file that holds it (split ipv4/ipv6 files)", async () => {
    const geo = await openGeoReader({ cityFiles: [flatV6, flatV4] });
    try {
      expect(geo.lookup("2.3.4.5")).toEqual({
        country: "FR",
        city: "Paris",
        latitude: 48.85,
        longitude: 2.35,
        coordinates: "48.8500,2.3500",
      });
      expect(geo.lookup("2a01:4f8::1")?.city).toBe("Berlin");
      // 2a00:1:: starts with the 32 bits of 42.0.0.1: an IPv4 tree must never answer IPv6.
      expect(geo.lookup("2a00:1::1")).toBeUndefined();
      expect(geo.lookup("42.0.0.1")?.city).toBe("Seoul");
    } finally {
      geo.close();
    }
  });

  it("opens ASN files alone", async () => {
    const geo = await openGeoReader({ cityFiles: [], asnFiles: [asn] });
    try {
      expect(geo.lookup("81.2.69.1")).toEqual({ asn: 20712, asOrg: "Andrews & Arnold Ltd" });
    } finally {
      geo.close();
    }
  });

  it("answers undefined after close", async () => {
    const geo = await openGeoReader({ cityFiles: [city] });
    expect(geo.lookup("81.2.69.160")?.country).toBe("GB");
    geo.close();
    expect(geo.lookup("81.2.69.160")).toBeUndefined();
  });

  it("works without a cache", async () => {
    const geo = await openGeoReader({ cityFiles: [city], cacheSize: 0 });
    try {
      expect(geo.lookup("81.2.69.160")?.city).toBe("London");
      expect(geo.lookup("81.2.69.160")?.city).toBe("London");
    } finally {
      geo.close();
    }
  });

  it("fails with a typed error naming the file when it is missing or not an mmdb", async () => {
    const missing = join(dir, "nope.mmdb");
    await expect(openGeoReader({ cityFiles: [missing] })).rejects.toMatchObject({
      code: "RISKGATE_GEO_UNAVAILABLE",
      details: { file: missing },
    });
    const junk = join(dir, "junk.mmdb");
    writeFileSync(junk, "not a database");
    const err = await openGeoReader({ cityFiles: [junk] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RiskgateError);
    expect((err as Error).message).toContain(junk);
  });

  it("rejects misuse early", async () => {
    await expect(openGeoReader({ cityFiles: [] })).rejects.toThrow(TypeError);
    await expect(openGeoReader({ cityFiles: [city], cacheSize: -1 })).rejects.toThrow(TypeError);
  });
});
