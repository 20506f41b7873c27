import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { IdentityOutcome } from "../../src/access/identity.js";
import type { AccessRequest } from "../../src/access/request.js";
import { networkOf } from "../../src/access/signals/network.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// Client classes, one token in many places, distributed stuffing. Whole pipeline,
// real (memory) state; the store ops they use (distinct, has, member) run against Redis in the
// store contract suite.

const demoText = readFileSync("policies/demo.yaml", "utf8");
const withSignals = (yaml: string) => demoText.replace("\nsignals:\n", `\nsignals:\n${yaml}`);

const BERLIN = "192.0.2.10";
const BERLIN_2 = "192.0.2.77"; // the same /24
const SAO_PAULO = "198.51.100.20";
const CLOUD = "203.0.113.50";
const where: Record<string, GeoLocation> = {
  [BERLIN]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [BERLIN_2]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [SAO_PAULO]: { country: "BR", latitude: -23.55, longitude: -46.633, asn: 28573 },
  [CLOUD]: { country: "US", latitude: 39.04, longitude: -77.49, asn: 16509 },
};
const geo = fixedGeo(where, { city: true, asn: true });

const cookieSession: IdentityOutcome = {
  kind: "verified",
  claims: { sub: "u-web", tier: "pro", org: "acme", amr: ["pwd"] },
  source: "cookie",
  cached: false,
} as unknown as IdentityOutcome; // the fake identifier fills in the caller

const claims: Record<string, Record<string, unknown> | IdentityOutcome> = {
  // Okta / Auth0 style client-credentials tokens: no amr, the subject is the client
  okta: { sub: "0oa1svc", cid: "0oa1svc", tier: "pro", org: "acme" },
  auth0: {
    sub: "svc-2@clients",
    azp: "svc-2",
    gty: "client-credentials",
    tier: "pro",
    org: "acme",
  },
  person: { sub: "u-person", tier: "pro", org: "acme", amr: ["pwd"] },
  // an unknown client: no class claim, no interactive login recorded, not the client itself
  bare: { sub: "u-bare", tier: "pro", org: "acme" },
  scraper2: { sub: "u-scraper2", tier: "pro", org: "acme", amr: ["mfa"] },
  loggedIn: { sub: "u-in", tier: "pro", org: "acme", auth_time: TEST_NOW / 1000 - 60 },
  ent: { sub: "u-ent", tier: "enterprise", org: "big", amr: ["pwd"] },
  scraper: { sub: "u-scraper", tier: "free", org: "acme", amr: ["mfa"] },
  big: { sub: "u-big", tier: "enterprise", org: "big", amr: ["mfa"] },
  web: cookieSession,
  owner: { sub: "u-owner", tier: "pro", org: "acme", amr: ["mfa"], jti: "tok-1" },
  ownerFresh: {
    sub: "u-owner",
    tier: "pro",
    org: "acme",
    amr: ["mfa"],
    jti: "tok-2",
    auth_time: TEST_NOW / 1000 + 110,
  },
};
for (let i = 1; i <= 6; i++)
  claims[`reader${i}`] = { sub: `u-reader-${i}`, tier: "pro", org: "acme", amr: ["mfa"] };
for (let i = 1; i <= 25; i++)
  claims[`stuffed${i}`] = { sub: `victim-${i}`, tier: "pro", org: `o${i}` };

function setup(policyText = demoText) {
  const check = pipelineCheck(policyText, { claims, geo });
  return (token: string, over: Partial<AccessRequest> & { ua?: string } = {}) => {
    const { ua, ...rest } = over;
    if (ua === undefined) return check(token, rest);
    return check(token, { ...rest, headers: new Map([["user-agent", ua]]) });
  };
}

describe("client classes", () => {
  it("does not score a machine token for having no amr or an SDK's user agent (defaults)", async () => {
    const check = setup();
    for (const token of ["okta", "auth0"]) {
      const verdict = await check(token, { ua: "python-requests/2.32" });
      expect(codes(verdict)).toEqual([]);
      expect(verdict.kind).toBe("allow");
    }
    // a person's password-only token with the same user agent still scores both, and the
    // demo policy's rule steps the script up
    const person = await check("person", { ua: "python-requests/2.32" });
    expect(codes(person)).toEqual([
      "request.automation",
      "auth.weak",
      "rule.automation-on-person-session",
    ]);
    expect(person.kind).toBe("challenge");
  });

  it("lets the route name the class (Envoy context_extensions)", async () => {
    const check = setup();
    const routed = await check("person", {
      ua: "curl/8.5",
      contextExtensions: { client_class: "machine" },
    });
    expect(codes(routed)).toEqual([]);
  });

  it("scores a missing device id on a browser session only, when configured", async () => {
    const check = setup(withSignals("  device: { missing_points: 10 }\n"));
    const web = await check("web");
    expect(codes(web)).toEqual(["device.missing", "auth.weak"]);
    const headers = new Map([
      ["authorization", "Bearer web"],
      ["x-device-id", "dev-1"],
    ]);
    expect(codes(await check("web", { headers }))).toEqual(["auth.weak"]);
    // a person's token (it records an interactive login: amr) is a browser-class session too
    expect(codes(await check("person"))).toEqual(["device.missing", "auth.weak"]);
    // a machine token and an unknown client send no device id either: nothing
    expect(codes(await check("okta"))).toEqual([]);
    expect(codes(await check("bare"))).toEqual(["auth.weak"]);
  });

  it("classes a token that records an interactive login (auth_time, amr) as a person's session", async () => {
    const check = setup(withSignals("  device: { missing_points: 10 }\n"));
    expect(codes(await check("loggedIn"))).toEqual(["device.missing", "auth.weak"]);
    // machine evidence comes first: a client-credentials token stays a machine
    expect(codes(await check("okta"))).toEqual([]);
    // person_claims: [] turns this evidence off
    const off = setup(
      withSignals("  device: { missing_points: 10 }\n").replace(
        "client_class: { enabled: true }",
        "client_class: { enabled: true, person_claims: [] }",
      ),
    );
    expect(codes(await off("loggedIn"))).toEqual(["auth.weak"]);
    expect(codes(await off("person"))).toEqual(["auth.weak"]);
  });

  it("can be turned off: every signal applies again", async () => {
    const off = demoText.replace(
      "client_class: { enabled: true }",
      "client_class: { enabled: false }",
    );
    expect(off).not.toBe(demoText);
    const check = setup(off);
    expect(codes(await check("okta", { ua: "python-requests/2.32" }))).toEqual([
      "request.automation",
      "auth.weak",
    ]);
  });
});

describe("one token, many places", () => {
  const PLACES = withSignals("  places: { enabled: true }\n");

  it("scores the thief's stream abroad, not the owner's interleaved one at home", async () => {
    const check = setup(PLACES);
    expect((await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) })).kind).toBe("allow");
    for (let m = 1; m < 10; m += 2) {
      const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(m) });
      expect(codes(thief)).toContain("geo.places");
      expect(thief.kind).not.toBe("allow");
      const home = await check("owner", { clientIp: BERLIN_2, receivedAt: minutes(m + 1) });
      expect(codes(home)).not.toContain("geo.places");
    }
  });

  it("is cleared by a fresh authentication (the traveller who stepped up)", async () => {
    const check = setup(PLACES);
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    const fresh = await check("ownerFresh", { clientIp: SAO_PAULO, receivedAt: minutes(2) });
    expect(codes(fresh)).not.toContain("geo.places");
  });

  it("does not apply to machine tokens (multi-region cloud NAT)", async () => {
    const check = setup(PLACES);
    await check("okta", { clientIp: CLOUD, receivedAt: minutes(0) });
    const other = await check("okta", { clientIp: SAO_PAULO, receivedAt: minutes(1) });
    expect(codes(other)).not.toContain("geo.places");
  });
});

describe("distributed stuffing", () => {
  it("counts distinct subjects per /24 network across its addresses", async () => {
    const check = setup();
    let last: Awaited<ReturnType<ReturnType<typeof setup>>> | undefined;
    for (let i = 1; i <= 20; i++) {
      last = await check(`stuffed${i}`, { clientIp: `198.51.100.${100 + i}` });
    }
    expect(codes(last as never)).toContain("attempts.distinct_subjects_network");
  });

  it("counts challenges as failed attempts of the client IP", async () => {
    // without sticky risk: with it, one subject's refusals count once (signals-stuffing.test.ts)
    const check = setup(demoText.replace(/^ {2}sticky_risk:.*\n/m, ""));
    // no auth_time on a step-up route: challenged (auth.max_age) whatever the score
    for (let i = 0; i < 20; i++) {
      const v = await check("ent", { path: "/admin/users", receivedAt: minutes(i / 10) });
      expect(v.kind).toBe("challenge");
    }
    const next = await check("person", { receivedAt: minutes(3) });
    expect(codes(next)).toContain("attempts.failed_ip");
  });

  it("names networks by their /24 and /48", () => {
    expect(networkOf("198.51.100.77")).toBe("198.51.100.0/24");
    expect(networkOf("2001:db8:abcd:12::1")).toBe("2001:db8:abcd::/48");
    expect(networkOf("not an ip")).toBeUndefined();
  });
});

describe("velocity that fits APIs", () => {
  // with a per-subject limit, subject velocity counts the window the pace reads; without one
  // (no requests_per_window), the pace counts it itself
  const noSubjectLimit = demoText.replace("    limits: { requests_per_window: 300 }\n", "");
  it.each([
    ["a per-subject limit", demoText],
    ["no per-subject limit", noSubjectLimit],
  ])(
    "scores a new person's session at many times its class's pace, learning only from trusted requests (%s)",
    async (_, policyText) => {
      if (policyText !== demoText) expect(policyText).not.toContain("{ requests_per_window: 300 }");
      const check = setup(policyText);
      const at = (m: number) => ({ receivedAt: minutes(m), ua: "Mozilla/5.0" });
      // three colleagues reading screens: under min_subjects (5), no population yet
      for (let i = 1; i <= 3; i++) await check(`reader${i}`, at(0));
      for (let k = 0; k < 35; k++) {
        expect(codes(await check("pacer", at(0.5)))).not.toContain("velocity.population");
      }
      // six people, three requests each over four minutes: the class's average is 0.6 a minute
      for (let m = 1; m <= 3; m++) {
        for (let i = 1; i <= 6; i++) await check(`reader${i}`, at(m));
      }
      // a new token at 10x that average and at least 30 in the minute scores; the demo policy's
      // rule steps it up. Its allowed requests counted toward the class, its refused ones do not
      const details: string[] = [];
      for (let k = 0; k < 40; k++) {
        const v = await check("scraper2", at(4.5));
        const pace = v.reasons.find((r) => r.code === "velocity.population");
        if (k < 29) {
          expect(pace).toBeUndefined();
          expect(v.kind).toBe("allow");
          continue;
        }
        expect(pace).toBeDefined();
        expect(v.kind).toBe("challenge");
        expect(codes(v)).toContain("rule.person-session-pace");
        details.push(pace?.detail ?? "");
      }
      expect(new Set(details.map((d) => d.replace(/^\d+ per 60s /, ""))).size).toBe(1);
      // the readers keep their pace: nothing
      for (let i = 1; i <= 6; i++) {
        expect(codes(await check(`reader${i}`, at(5)))).not.toContain("velocity.population");
      }
      // machine tokens are not measured against people (classes: [browser])
      for (let k = 0; k < 40; k++) {
        expect(codes(await check("okta", at(5.5)))).not.toContain("velocity.population");
      }
    },
  );

  it("scores scraping paced just under the per-minute limit, once it is sustained", async () => {
    // free: 20 a minute; sustained: half of that kept up for an hour (600) scores
    const check = setup();
    const seen: string[][] = [];
    for (let m = 0; m < 40; m++) {
      for (let i = 0; i < 18; i++) {
        const v = await check("scraper", { receivedAt: minutes(m + i / 18) });
        seen.push(codes(v));
      }
    }
    expect(seen[100]).not.toContain("velocity.sustained");
    expect(seen.at(-1)).toContain("velocity.sustained");
  });

  it("steps up a person's session over its ceiling with no population to compare, never a machine token", async () => {
    // alone at night: under min_subjects, the pace against the population is silent; an
    // enterprise limit (3,000 a minute) is far away at 130 a minute
    const check = setup();
    const at = (k: number) => ({ receivedAt: minutes(k / 130), ua: "Mozilla/5.0" });
    for (let k = 0; k < 1200; k++) {
      const v = await check("big", at(k));
      expect(codes(v)).not.toContain("velocity.person_ceiling");
      expect(v.kind).toBe("allow");
    }
    const over = await check("big", at(1200));
    expect(over.reasons.find((r) => r.code === "velocity.person_ceiling")).toMatchObject({
      points: 30,
      detail: "1201/1200 per 600s",
    });
    expect(over.kind).toBe("challenge");
    expect(codes(over)).toContain("rule.person-session-pace");
    // an SDK's client-credentials token may keep that pace (pro: under 80% of 300 a minute)
    for (let k = 0; k < 1300; k++) {
      const v = await check("okta", { receivedAt: minutes(20 + k / 200) });
      expect(codes(v)).not.toContain("velocity.person_ceiling");
    }
  });

  it("limits a client IP whatever the caller's tier", async () => {
    const check = setup(
      demoText.replace(
        "  velocity:\n    enabled: true\n",
        "  velocity:\n    enabled: true\n    ip_requests_per_window: 5\n",
      ),
    );
    for (let i = 0; i < 5; i++) expect((await check("big")).kind).toBe("allow");
    const sixth = await check("big");
    expect(sixth.kind).toBe("throttle");
    expect(codes(sixth)).toContain("velocity.ip_any_tier");
    // another address is not affected
    expect((await check("big", { clientIp: CLOUD })).kind).toBe("allow");
  });
});
