import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { schemaOfDatabaseType, toGeoLocation } from "../../src/geo/geo-record.js";

const record = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/geo/${name}`, import.meta.url), "utf8"));

describe("schemaOfDatabaseType", () => {
  it("names the schema of the databases riskgate knows", () => {
    expect(schemaOfDatabaseType("GeoIP2-City")).toBe("geoip2");
    expect(schemaOfDatabaseType("GeoLite2-City")).toBe("geoip2");
    expect(schemaOfDatabaseType("GeoLite2-Country")).toBe("geoip2");
    expect(schemaOfDatabaseType("GeoIP2-Enterprise")).toBe("geoip2");
    expect(schemaOfDatabaseType("DBIP-City-Lite")).toBe("geoip2");
    expect(schemaOfDatabaseType("city ipv4")).toBe("flat");
    expect(schemaOfDatabaseType("country ipv6")).toBe("flat");
    expect(schemaOfDatabaseType("GeoLite2-ASN")).toBe("asn");
    expect(schemaOfDatabaseType("GeoIP2-ISP")).toBe("asn");
    expect(schemaOfDatabaseType("DBIP-ASN-Lite (compat=GeoLite2-ASN)")).toBe("asn");
    expect(schemaOfDatabaseType("asn ipv4")).toBe("asn");
    expect(schemaOfDatabaseType("Something-Else")).toBeUndefined();
  });
});

describe("toGeoLocation", () => {
  it("maps a GeoIP2/GeoLite2 City record", () => {
    expect(toGeoLocation(record("geoip2-city-record.json"), "geoip2")).toEqual({
      country: "GB",
      city: "London",
      latitude: 51.5142,
      longitude: -0.0931,
      coordinates: "51.5142,-0.0931",
      accuracyKm: 10,
    });
  });

  it("maps a GeoIP2 Country record (no city, no location)", () => {
    expect(toGeoLocation(record("geoip2-country-record.json"), "geoip2")).toEqual({
      country: "DE",
    });
  });

  it("falls back to the registered country when the record has no country", () => {
    expect(toGeoLocation(record("geoip2-registered-only-record.json"))).toEqual({
      country: "JP",
      latitude: 35.69,
      longitude: 139.69,
      coordinates: "35.6900,139.6900",
      accuracyKm: 1000,
    });
  });

  it("takes any language's city name when English is missing, and Enterprise traits' ASN", () => {
    expect(toGeoLocation(record("geoip2-enterprise-record.json"))).toEqual({
      country: "US",
      city: "マウンテンビュー",
      latitude: 37.386,
      longitude: -122.0838,
      coordinates: "37.3860,-122.0838",
      accuracyKm: 1000,
      asn: 15169,
      asOrg: "GOOGLE",
    });
  });

  it("maps a GeoLite2-ASN record", () => {
    expect(toGeoLocation(record("geolite2-asn-record.json"), "asn")).toEqual({
      asn: 20712,
      asOrg: "Andrews & Arnold Ltd",
    });
    expect(toGeoLocation({ autonomous_system_number: 64512 })).toEqual({ asn: 64512 });
  });

  it("maps a DB-IP City Lite record as ip-location-db ships it (flat fields, empty strings)", () => {
    expect(toGeoLocation(record("dbip-city-record.json"), "flat")).toEqual({
      country: "US",
      city: "Mountain View",
      latitude: 37.422000885009766,
      longitude: -122.08499908447266,
      coordinates: "37.4220,-122.0850",
    });
    expect(toGeoLocation({ country_code: "de", city: "" })).toEqual({ country: "DE" });
  });

  it("lets the record's shape win over a wrong schema hint", () => {
    expect(toGeoLocation(record("dbip-city-record.json"), "geoip2")?.country).toBe("US");
    expect(toGeoLocation(record("geoip2-city-record.json"), "flat")?.city).toBe("London");
  });

  it("drops unknown and invalid values", () => {
    expect(toGeoLocation({ country_code: "ZZ", latitude: 0, longitude: 0 })).toEqual({
      latitude: 0,
      longitude: 0,
      coordinates: "0.0000,0.0000",
    });
    expect(toGeoLocation({ country_code: "USA", latitude: 91, longitude: 10 })).toBeUndefined();
    expect(toGeoLocation({ location: { latitude: 10 } }, "geoip2")).toBeUndefined();
    expect(toGeoLocation({ autonomous_system_number: -1 })).toBeUndefined();
    expect(toGeoLocation({ continent: { code: "EU" } }, "geoip2")).toBeUndefined();
    for (const junk of [null, undefined, 42, "US", [], {}]) {
      expect(toGeoLocation(junk, "geoip2")).toBeUndefined();
    }
  });

  it("returns frozen objects (they are shared through the cache)", () => {
    expect(Object.isFrozen(toGeoLocation(record("dbip-city-record.json")))).toBe(true);
  });
});
