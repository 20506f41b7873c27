import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  claimsOf,
  createMinter,
  generate,
  toCheckRequest,
  writeGenerated,
} from "../../bench/eval/generate.js";
import { IDP_SHAPES, type IdpShape, machineClaims } from "../../bench/eval/idp.js";
import type { LabelRecord, SimRequest } from "../../bench/eval/model.js";
import { CARRIERS, VPN_LOCATIONS } from "../../bench/eval/networks.js";
import { BLOCKLISTED_IPS, CITIES, CLOUD } from "../../bench/eval/places.js";
import { createRng } from "../../bench/eval/rng.js";
import {
  COMMUTES,
  FAMILIES,
  MACHINE_POPULATIONS,
  POPULATIONS,
  simulate,
} from "../../bench/eval/traffic.js";
import { ORGS } from "../../bench/eval/world.js";
import { loadPolicyFile } from "../../src/access/policy.js";
import { distanceKm } from "../../src/geo/distance.js";
import { type GeoReader, openEmbeddedGeoReader } from "../../src/geo/geo-reader.js";
import { parseIpList } from "../../src/geo/ip-list.js";
import { replay } from "../../src/replay/replay.js";

const ISS = "https://riskgate.dev/demo";
const AUD = "demo-api";
const START = Date.UTC(2026, 10, 9);

describe("eval generator", () => {
  it("writes the same traffic and tokens for the same seed, other traffic for another", async () => {
    const a = await generate({ seed: "s1", days: 1, scale: 0.3, issuer: ISS, audience: AUD });
    const b = await generate({ seed: "s1", days: 1, scale: 0.3, issuer: ISS, audience: AUD });
    const c = await generate({ seed: "s2", days: 1, scale: 0.3, issuer: ISS, audience: AUD });
    expect(a.requests.length).toBeGreaterThan(1000);
    expect(b.requests).toEqual(a.requests);
    expect([...b.tokens]).toEqual([...a.tokens]);
    expect(b.jwks).toEqual(a.jwks);
    expect(c.requests).not.toEqual(a.requests);
    expect(c.jwks).not.toEqual(a.jwks);
  });

  it("has every population and attack family in a week, in time order, inside the week", () => {
    const reqs = simulate(createRng("cover"), { start: START, days: 7, scale: 0.35 });
    const groups = new Set(reqs.map((r) => r.group));
    for (const g of [...POPULATIONS, ...FAMILIES]) expect(groups, g).toContain(g);
    for (let i = 1; i < reqs.length; i++) {
      expect((reqs[i]?.t ?? 0) >= (reqs[i - 1]?.t ?? 0)).toBe(true);
    }
    expect(reqs[0]?.t).toBeGreaterThanOrEqual(START);
    expect(reqs.at(-1)?.t).toBeLessThan(START + 7 * 86_400_000);
    for (const f of FAMILIES) {
      expect(
        reqs.filter((r) => r.group === f).every((r) => r.label === "attack"),
        f,
      ).toBe(true);
    }
    for (const p of POPULATIONS) {
      expect(
        reqs.filter((r) => r.group === p).every((r) => r.label === "legit"),
        p,
      ).toBe(true);
    }
  });

  describe("written files", () => {
    let dir: string;
    let lines: Record<string, unknown>[];
    let labels: LabelRecord[];
    let jwks: { keys: Record<string, unknown>[] };
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "rg-eval-"));
      const g = await generate({ seed: "files", days: 1, scale: 0.2, issuer: ISS, audience: AUD });
      const files = await writeGenerated(g, dir);
      const jsonl = async (f: string) =>
        (await readFile(f, "utf8"))
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l));
      lines = await jsonl(files.requests);
      labels = await jsonl(files.labels);
      jwks = JSON.parse(await readFile(files.jwks, "utf8"));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    type Http = { id: string; headers: Record<string, string> };
    const httpOf = (l: Record<string, unknown>) =>
      (l as { attributes: { request: { time: string; http: Http } } }).attributes.request;

    it("labels line up with the requests one to one, by request id", () => {
      expect(labels.length).toBe(lines.length);
      lines.forEach((l, i) => {
        const req = httpOf(l);
        expect(req.http.id).toBe(labels[i]?.request_id);
        expect(req.http.headers["x-request-id"]).toBe(req.http.id);
      });
      expect(new Set(labels.map((l) => l.request_id)).size).toBe(labels.length);
    });

    it("mints tokens the public JWKS verifies, valid at each request's time", async () => {
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).not.toHaveProperty("d");
      const keySet = createLocalJWKSet(jwks as never);
      for (const l of lines.filter((_, i) => i % 97 === 0)) {
        const req = httpOf(l);
        const jwt = (req.http.headers.authorization ?? "").replace(/^Bearer /, "");
        const at = new Date(req.time);
        const { payload } = await jwtVerify(jwt, keySet, {
          issuer: ISS,
          audience: AUD,
          currentDate: at,
        });
        expect((payload.iat ?? 0) * 1000).toBeLessThanOrEqual(at.getTime());
        expect((payload.exp ?? 0) * 1000).toBeGreaterThan(at.getTime());
      }
    });

    it("is accepted by the real pipeline: no identity failure but PingOne's subject-less tokens", async () => {
      const policy = await loadPolicyFile("policies/demo.yaml");
      const sample = labels.slice(0, 600);
      const input = (async function* () {
        for (const l of lines.slice(0, sample.length)) yield JSON.stringify(l);
      })();
      const jwksFile = join(dir, "jwks.json");
      let n = 0;
      for await (const d of replay({ policy, keys: jwksFile }, input)) {
        const actor = sample[n++]?.actor ?? "";
        const identity = d.reasons.map((r) => r.code).filter((c) => c.startsWith("identity."));
        // the org paulista signs in with PingOne, whose client-credentials tokens have no sub
        expect(identity, actor).toEqual(
          actor.startsWith("client-paulista-") ? ["identity.claims_invalid"] : [],
        );
      }
      expect(n).toBe(sample.length);
    });
  });

  describe("addresses", () => {
    let geo: GeoReader;
    beforeAll(async () => {
      geo = await openEmbeddedGeoReader();
    });
    afterAll(() => geo.close());

    it("every city address geolocates to its city in the embedded DB-IP database", () => {
      for (const [name, city] of Object.entries(CITIES)) {
        for (const ip of city.ips) {
          expect(geo.lookup(ip), `${name} ${ip}`).toMatchObject({
            country: city.country,
            city: city.city,
          });
        }
      }
    });

    it("a city's addresses are one place, not namesakes (Newark, NJ vs Newark, DE): within 50 km", () => {
      for (const [name, city] of Object.entries(CITIES)) {
        const [first, ...rest] = city.ips.map((ip) => geo.lookup(ip));
        for (const [i, loc] of rest.entries()) {
          const km = distanceKm(
            { latitude: first?.latitude ?? 0, longitude: first?.longitude ?? 0 },
            { latitude: loc?.latitude ?? 90, longitude: loc?.longitude ?? 0 },
          );
          expect(km, `${name} ${city.ips[i + 1]}`).toBeLessThan(50);
        }
      }
    });

    it("every cloud address geolocates to its provider region's city", () => {
      for (const [name, region] of Object.entries(CLOUD)) {
        for (const ip of region.ips) {
          expect(geo.lookup(ip), `${name} ${ip}`).toMatchObject({
            country: region.country,
            city: region.city,
          });
        }
      }
    });

    it("commuters' phones locate in the next city, 10-100 km from the office", () => {
      for (const [orgId, mobileCity] of COMMUTES) {
        const office = geo.lookup(ORGS.find((o) => o.id === orgId)?.officeIp ?? "");
        for (const ip of CITIES[mobileCity].ips) {
          const phone = geo.lookup(ip);
          const km = distanceKm(
            { latitude: office?.latitude ?? 0, longitude: office?.longitude ?? 0 },
            { latitude: phone?.latitude ?? 0, longitude: phone?.longitude ?? 0 },
          );
          expect(km, `${orgId} -> ${mobileCity} ${ip}`).toBeGreaterThan(10);
          expect(km, `${orgId} -> ${mobileCity} ${ip}`).toBeLessThan(100);
        }
      }
    });

    it("the block-listed family's addresses are on the example policy's block list", async () => {
      const text = await readFile("policies/lists/known-bad.netset", "utf8");
      const { list, errors } = parseIpList(text, "known-bad.netset");
      expect(errors).toEqual([]);
      for (const ip of BLOCKLISTED_IPS) expect(list.has(ip), ip).toBe(true);
      // and no legitimate population's address is
      for (const city of Object.values(CITIES))
        for (const ip of city.ips) expect(list.has(ip), ip).toBe(false);
    });
  });
});

describe("machine tokens in the IdPs' shapes", () => {
  const fixtures = readdirSync("test/fixtures/idp-tokens").map(
    (f) =>
      JSON.parse(readFileSync(join("test/fixtures/idp-tokens", f), "utf8")) as {
        idp: string;
        kind: string;
        profile?: string;
        version?: string;
        claims: Record<string, unknown>;
      },
  );
  const fixtureOf = (idp: IdpShape) =>
    fixtures.find((f) => {
      if (f.kind === "user") return false;
      if (idp === "auth0") return f.idp === "auth0" && f.profile === undefined;
      if (idp === "auth0-rfc9068") return f.idp === "auth0" && f.profile === "rfc9068";
      if (idp.startsWith("entra-")) return f.idp === "entra" && f.version === `${idp.slice(7)}.0`;
      return f.idp === idp;
    });
  // deployment settings (issuer, audience, times) and the custom org/tier claims aside
  const OWN = new Set(["iss", "aud", "iat", "exp", "nbf", "org", "tier"]);
  const shape = (claims: Record<string, unknown>) =>
    Object.keys(claims)
      .filter((k) => !OWN.has(k))
      .sort();

  it("uses each IdP's documented claims, as its fixture has them", () => {
    for (const idp of IDP_SHAPES) {
      const fixture = fixtureOf(idp);
      expect(fixture, idp).toBeDefined();
      const fixtureClaims = new Set(shape(fixture?.claims ?? {}));
      for (const k of shape(machineClaims(idp, "client-acme-sync-0", 1_790_000_000)))
        expect(fixtureClaims, `${idp}: ${k}`).toContain(k);
      for (const k of ["sub", "azp", "client_id", "cid", "appid", "gty", "idtyp", "auth_time"]) {
        expect(k in machineClaims(idp, "x", 1), `${idp}: ${k}`).toBe(k in (fixture?.claims ?? {}));
      }
    }
  });

  it("spreads the week's machine clients over every IdP shape", () => {
    const reqs = simulate(createRng("idps"), { start: START, days: 2, scale: 1 });
    const machines = reqs.filter((r) => MACHINE_POPULATIONS.includes(r.group));
    expect(machines.every((r) => r.token.idp !== undefined && r.token.clientId !== undefined)).toBe(
      true,
    );
    expect(new Set(machines.map((r) => r.token.idp))).toEqual(new Set(IDP_SHAPES));
    expect(reqs.filter((r) => r.token.idp !== undefined).every((r) => r.label === "legit")).toBe(
      true,
    );
  });

  it("passes the real pipeline's identity stage (PingOne's subject-less token by its client id)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rg-idp-"));
    try {
      const minter = await createMinter(
        "idp-shapes",
        "https://login.example.com/",
        "https://api.example.com",
      );
      const jwksFile = join(dir, "jwks.json");
      await writeFile(jwksFile, JSON.stringify(minter.jwks));
      const t0 = START + 3 * 3_600_000;
      const checks: string[] = [];
      for (const [i, idp] of IDP_SHAPES.entries()) {
        const req: SimRequest = {
          t: t0 + i * 1000,
          label: "legit",
          group: "sdk-client-cloud",
          actor: `client-${idp}`,
          ip: CLOUD.awsFrankfurt.ips[0] as string,
          port: 40000,
          method: "GET",
          path: "/v1/projects",
          userAgent: "okhttp/4.12.0",
          token: {
            sub: `client-${idp}`,
            org: "acme",
            tier: "enterprise",
            iat: Math.floor(t0 / 1000),
            exp: Math.floor(t0 / 1000) + 3600,
            clientId: `client-${idp}`,
            idp,
          },
        };
        checks.push(
          JSON.stringify(toCheckRequest(req, `idp-${idp}`, await minter.jwtOf(req.token))),
        );
      }
      const policy = await loadPolicyFile("policies/production.yaml");
      const input = (async function* () {
        yield* checks;
      })();
      const seen = new Map<string, readonly string[]>();
      for await (const d of replay({ policy, keys: jwksFile }, input)) {
        seen.set(
          d.request_id.slice(4),
          d.reasons.map((r) => r.code),
        );
      }
      for (const idp of IDP_SHAPES) {
        const codes = seen.get(idp) ?? [];
        const identity = codes.filter((c) => c.startsWith("identity."));
        // PingOne sends no sub for client credentials: its client id names it
        expect(identity, idp).toEqual([]);
      }
      expect(claimsOf({ sub: "u", org: "o", tier: "pro", iat: 1, exp: 2 })).not.toHaveProperty(
        "gty",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("shared networks", () => {
  let geo: GeoReader;
  beforeAll(async () => {
    geo = await openEmbeddedGeoReader();
  });
  afterAll(() => geo.close());

  it("every commercial VPN exit locates in its city, on a network the example hosting list names", async () => {
    const hosting = await readFile("policies/lists/hosting-asns.txt", "utf8");
    for (const [name, loc] of Object.entries(VPN_LOCATIONS)) {
      expect(hosting, name).toMatch(new RegExp(`^AS${loc.asn}\\b`, "m"));
      for (const ip of loc.ips)
        expect(geo.lookup(ip), `${name} ${ip}`).toMatchObject({
          country: loc.country,
          city: loc.city,
        });
    }
  });

  it("every carrier CGNAT address locates at its gateway city in the carrier's country", () => {
    for (const [name, pool] of Object.entries(CARRIERS)) {
      for (const [ip, city] of pool.ips)
        expect(geo.lookup(ip), `${name} ${ip}`).toMatchObject({ country: pool.country, city });
    }
  });
});
