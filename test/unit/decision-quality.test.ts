import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { signalDataGaps } from "../../src/access/signals/signal-data.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store, StoreBatch, StoreOp } from "../../src/state/store.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// Decision quality: four defects that let attacks through or locked out the innocent, over the
// whole pipeline with real (memory) state. Redis runs the same store ops through the contract
// suite.

// the demo policy without its rules, sticky risk and one-token-many-places (on by default; tests
// add the ones they exercise)
const demoText = readFileSync("policies/demo.yaml", "utf8")
  .replace(/^rules:[\s\S]*?(?=^\S)/m, "")
  .replace(/^ {2}sticky_risk:.*\n/m, "  places: { enabled: false }\n");

const BERLIN = "192.0.2.10";
const SAO_PAULO = "198.51.100.20";
const places: Record<string, GeoLocation> = {
  [BERLIN]: { country: "DE", latitude: 52.52, longitude: 13.405 },
  [SAO_PAULO]: { country: "BR", latitude: -23.55, longitude: -46.633 },
};
const geo = fixedGeo(places);

const claims = {
  owner: { sub: "u-owner", tier: "pro", org: "acme", amr: ["mfa"] },
  colleague: { sub: "u-colleague", tier: "pro", org: "acme", amr: ["mfa"] },
  hammer: { sub: "u-hammer", tier: "pro", org: "acme", amr: ["mfa"] },
  admin: { sub: "u-admin", tier: "enterprise", amr: ["mfa"], auth_time: TEST_NOW / 1000 - 60 },
  adminOld: { sub: "u-admin", tier: "enterprise", amr: ["mfa"], auth_time: TEST_NOW / 1000 - 7200 },
  adminNoTime: { sub: "u-admin", tier: "enterprise", amr: ["mfa"] },
};

/** A store that counts batches and can hold the writes after the verdict unanswered. */
function countingStore(inner: Store, hold = false) {
  const batches: StoreOp[][] = [];
  const store: Store = {
    kind: inner.kind,
    exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>) {
      batches.push([...batch.ops]);
      const done = inner.exec(batch);
      // a Check's second batch is the writes after the verdict: they reach the store, but
      // their answer never comes back, so a decision that waited on them would hang
      if (hold && batches.length % 2 === 0) return new Promise<never>(() => {});
      return done;
    },
    close: () => inner.close(),
  };
  return { store, batches };
}

function setup(policyText = demoText, store: Store = createMemoryStore()) {
  return pipelineCheck(policyText, { claims, geo, store });
}

describe("a refused request does not teach the profile", () => {
  it("keeps a thief abroad risky, and the owner at home", async () => {
    const check = setup();
    const owner = await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    expect(owner).toMatchObject({ kind: "allow", score: 0 });

    // the stolen token used from another continent ten minutes later
    const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    expect(thief.kind).toBe("challenge");
    expect(codes(thief)).toEqual(["geo.impossible_travel", "geo.new_country"]);

    // again: still measured from Berlin, and Brazil is still not a known country
    const again = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(11) });
    expect(again.kind).toBe("challenge");
    expect(codes(again)).toEqual(["geo.impossible_travel", "geo.new_country"]);

    // the owner back home: no travel against the thief's location
    const home = await check("owner", { clientIp: BERLIN, receivedAt: minutes(12) });
    expect(home).toMatchObject({ kind: "allow", score: 0, reasons: [] });
  });

  it("does not learn from a request shadow mode lets through", async () => {
    const check = setup(demoText.replace("mode: enforce", "mode: shadow"));
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    expect(thief).toMatchObject({ kind: "allow", shadowOf: "challenge" });
    const again = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(11) });
    expect(again).toMatchObject({ kind: "allow", shadowOf: "challenge" });
    expect(codes(again)).toEqual(["geo.impossible_travel", "geo.new_country"]);
  });

  it("does not learn from a header-style challenge, though the upstream serves it", async () => {
    const check = setup(
      demoText.replace(
        "challenge: { style: step_up, acr_values: mfa }",
        "challenge: { style: header, acr_values: mfa }",
      ),
    );
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    expect(thief).toMatchObject({ kind: "challenge", style: "header" });
    const again = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(11) });
    expect(codes(again)).toEqual(["geo.impossible_travel", "geo.new_country"]);
  });

  it("learns only from an allow with no open finding: a new country stays new until answered", async () => {
    const check = setup();
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    // fourteen hours later in Brazil: a plausible flight, only the new country scores
    const landed = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(14 * 60) });
    expect(landed).toMatchObject({ kind: "allow", score: 15 });
    expect(codes(landed)).toEqual(["geo.new_country"]);
    // allowed, but with the new country on it: it taught nothing (a step-up would)
    const next = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(14 * 60 + 1) });
    expect(next).toMatchObject({ kind: "allow", score: 15 });
    expect(codes(next)).toEqual(["geo.new_country"]);
  });

  it("keeps one round trip on the deciding path: the writes go out after, unawaited", async () => {
    const { store, batches } = countingStore(createMemoryStore(), true);
    const check = setup(demoText, store);
    // the second batch of every Check never answers, and the decision still comes back
    const first = await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    expect(first.kind).toBe("allow");
    expect(batches.map((b) => b.map((op) => op.op))).toEqual([
      // subject velocity (per window, sustained), pace against the population (own pace,
      // the class's trusted requests and subjects), a person's ceiling, failed attempts (5: per subject, per IP,
      // subjects per IP and per network, tokens per IP), stuffing (6: the subject's trusted
      // networks, its org's countries and networks, orgs per IP, when it was first trusted and
      // first refused), last sighting, known countries, usage baseline (read, not counted),
      // the subject's last challenge (a passed step-up clears what it was for)
      // and the hours the person works (sensitive-route baseline; the route is not sensitive)
      [
        "window",
        "window",
        "window",
        "window",
        "distinct",
        "window",
        "window",
        "window",
        "distinct",
        "distinct",
        "distinct",
        "has",
        "has",
        "has",
        "distinct",
        "get",
        "get",
        "get",
        "has",
        "baseline",
        "get",
        "get",
      ],
      // the allowed request counts toward its class's population; its network and first
      // trusted time (a new subject teaches its org nothing yet), last sighting and country,
      // one request in its usage baseline, and the hour it works at
      ["window", "member", "swap", "swap", "member", "baseline", "swap"],
    ]);
    const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    expect(thief.kind).toBe("challenge");
    // challenged: one read batch; of the profile nothing is written (only usage counters
    // would be, and a challenge is not served); what the challenge was for is kept for a
    // step-up to answer, and it counts as a failed attempt of the client IP
    expect(batches).toHaveLength(4);
    expect(batches[3]?.map((op) => [op.op, op.key.tag, op.key.name])).toEqual([
      ["swap", "s:u-owner", "challenged"],
      ["window", `ip:${SAO_PAULO}`, "fail"],
    ]);
  });
});

describe("a stale authentication forces step-up (RFC 9470 max_age)", () => {
  // stale_auth off: the points are gone, the route's max_age still holds
  const noStalePoints = demoText.replace(
    "stale_auth: { enabled: true,",
    "stale_auth: { enabled: false,",
  );

  it("challenges an auth_time older than the route's max_age, whatever the score", async () => {
    const check = setup(noStalePoints);
    const fresh = await check("admin", { path: "/admin/users" });
    expect(fresh).toMatchObject({ kind: "allow", score: 15 });
    const old = await check("adminOld", { path: "/admin/users" });
    expect(old).toMatchObject({
      kind: "challenge",
      score: 15,
      acrValues: "mfa",
      maxAge: 900,
      style: "step_up",
    });
    expect(old.reasons.at(-1)).toEqual({
      code: "auth.max_age",
      points: 0,
      detail: "auth_time 7200s ago; max_age 900s",
    });
  });

  it("challenges a token without auth_time on a route that sets max_age", async () => {
    const check = setup(noStalePoints);
    const none = await check("adminNoTime", { path: "/admin/users" });
    expect(none).toMatchObject({ kind: "challenge", maxAge: 900 });
    expect(codes(none)).toContain("auth.max_age");
  });

  it("leaves routes without max_age to the score", async () => {
    const check = setup(noStalePoints);
    // /billing is high sensitivity without step_up: an old login is not a challenge by itself
    const billing = await check("adminOld", { path: "/billing" });
    expect(billing).toMatchObject({ kind: "allow", score: 15 });
  });
});

describe("one throttled subject does not lock out its org or IP", () => {
  const orgLimits = demoText.replace(
    "limits: { requests_per_window: 300 }",
    "limits: { requests_per_window: 300, org_requests_per_window: 3000, ip_requests_per_window: 3000 }",
  );

  it("counts only served requests toward the org and IP windows", async () => {
    const check = setup(orgLimits);
    const kinds = new Map<string, number>();
    for (let i = 0; i < 3100; i++) {
      const v = await check("hammer", { receivedAt: TEST_NOW + i });
      kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
    }
    expect(Object.fromEntries(kinds)).toEqual({ allow: 300, throttle: 2800 });
    // the same org, from the same IP: its first request is served
    const other = await check("colleague", { receivedAt: TEST_NOW + 3100 });
    expect(other.kind).toBe("allow");
    expect(codes(other)).toEqual([]);
  });

  it("keeps the throttled subject throttled while it keeps sending (its own window counts attempts)", async () => {
    const check = setup(orgLimits);
    for (let i = 0; i < 400; i++) await check("hammer", { receivedAt: TEST_NOW + i });
    const v = await check("hammer", { receivedAt: TEST_NOW + 500 });
    expect(v.kind).toBe("throttle");
    // the exact window holds the newest 300 attempts: past its limit it reads "over by one"
    expect(v.reasons.find((r) => r.code === "velocity.subject")?.detail).toBe("301/300 per 60s");
  });

  it("still throttles an org whose served requests pass its limit", async () => {
    const small = orgLimits.replace("org_requests_per_window: 3000", "org_requests_per_window: 5");
    const check = setup(small);
    for (let i = 0; i < 5; i++) {
      expect((await check(i % 2 ? "owner" : "colleague")).kind).toBe("allow");
    }
    const sixth = await check("hammer");
    expect(sixth.kind).toBe("throttle");
    expect(codes(sixth)).toEqual(["velocity.org"]);
  });
});

describe("a signal without its data is refused or warned about, not silent", () => {
  const withCountries = demoText.replace(
    "    entitlements: [api.read]\n",
    "    entitlements: [api.read]\n    countries: { deny: [KP] }\n",
  );
  const asn = (text: string) =>
    text.replace("signals:\n", "signals:\n  hosting_asn: { enabled: true, file: asn.txt }\n");

  it("refuses configured lists without data, warns about default signals left idle", () => {
    const doc = parsePolicy(asn(withCountries), "t.yaml").doc;
    const none = signalDataGaps(doc, undefined);
    expect(none.missing).toEqual([
      expect.stringMatching(/^signals\.hosting_asn needs ASN data/),
      expect.stringMatching(/^tiers\.free\.countries needs geolocation/),
    ]);
    expect(none.idle).toEqual(["signals.impossible_travel", "signals.new_country"]);
    expect(signalDataGaps(doc, geo).missing).toEqual([
      expect.stringMatching(/^signals\.hosting_asn needs ASN data/),
    ]);
    const full = signalDataGaps(doc, { ...geo, data: { city: true, asn: true } });
    expect(full).toEqual({ missing: [], idle: [] });
  });
});
