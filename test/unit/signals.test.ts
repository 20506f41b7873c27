import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { anonymousCaller, type Caller } from "../../src/access/license.js";
import { parsePolicy } from "../../src/access/policy.js";
import type { AccessRequest } from "../../src/access/request.js";
import type { ResolvedRoute } from "../../src/access/routes.js";
import { devicePosture, newDevice } from "../../src/access/signals/device.js";
import { failedAttempts, failureRecord } from "../../src/access/signals/failed-attempts.js";
import { countryPolicy, impossibleTravel, newCountry } from "../../src/access/signals/geo.js";
import { hostingAsn, ipReputation } from "../../src/access/signals/ip-reputation.js";
import { requestShape } from "../../src/access/signals/request-shape.js";
import {
  EMPTY_ENV,
  type Outcome,
  type SignalContext,
  type SignalEnv,
} from "../../src/access/signals/signal.js";
import { isAnomalous, usageAnomaly } from "../../src/access/signals/usage-anomaly.js";
import { orgVelocity, quota, quotaPeriod } from "../../src/access/signals/velocity.js";
import type { Verdict } from "../../src/access/verdict.js";
import { parseAsnList } from "../../src/geo/asn-list.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { parseIpList } from "../../src/geo/ip-list.js";
import { accessRequest } from "../helpers/access-request.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const base = readFileSync("policies/demo.yaml", "utf8");

function policyWith(extraYaml = "", replace: [string, string][] = []) {
  let text = base;
  for (const [a, b] of replace) text = text.replace(a, b);
  return parsePolicy(`${text}\n${extraYaml}`, "t.yaml");
}

const ALLOWED: Verdict = { kind: "allow", requestId: "r", score: 0, reasons: [] };

/** What a verdict lets the signals write: served, trusted, and the verdict (an allow unless given). */
function outcome(served: boolean, trusted: boolean, verdict: Verdict = ALLOWED): Outcome {
  return { served, trusted, verdict, enforced: verdict, open: [] };
}

const caller: Caller = {
  subject: "alice",
  org: "acme",
  tier: "pro",
  entitlements: [],
  amr: ["mfa"],
  acr: "",
  anonymous: false,
};

function ctx(
  over: {
    policy?: ReturnType<typeof policyWith>;
    req?: Partial<AccessRequest>;
    location?: GeoLocation;
    env?: Partial<SignalEnv>;
    route?: Partial<ResolvedRoute>;
    caller?: Caller;
    now?: number;
    tier?: string;
    clientClass?: SignalContext["clientClass"];
    claims?: Record<string, unknown>;
  } = {},
): SignalContext {
  const policy = over.policy ?? policyWith();
  const tierName = over.tier ?? "pro";
  return {
    policy,
    req: accessRequest({
      id: "r",
      path: "/v1/x",
      clientIp: "198.51.100.10",
      receivedAt: over.now ?? NOW,
      ...over.req,
    }),
    caller: over.caller ?? caller,
    route: {
      name: "api-read",
      rule: undefined,
      auth: "required",
      sensitivity: "low",
      ...over.route,
    },
    tierName,
    tier: policy.doc.tiers[tierName] as SignalContext["tier"],
    now: over.now ?? NOW,
    env: { ...EMPTY_ENV, ...over.env },
    location: () => over.location,
    deviceId: (over.req?.headers as Map<string, string> | undefined)?.get("x-device-id") ?? "",
    claims: over.claims ?? {},
    credentialSource: "bearer",
    clientClass: over.clientClass ?? "unknown",
  };
}

describe("impossible travel", () => {
  const paris = { country: "FR", latitude: 48.8566, longitude: 2.3522 };
  const sydney = { country: "AU", latitude: -33.8688, longitude: 151.2093 };
  const versailles = { country: "FR", latitude: 48.8049, longitude: 2.1204 };
  const at = (loc: typeof paris, secondsAgo: number) =>
    `${loc.latitude},${loc.longitude},${NOW / 1000 - secondsAgo},${loc.country}`;

  it("reads the last sighting, and stores this one only when the verdict trusts it", () => {
    const c = ctx({ location: paris });
    expect(impossibleTravel.ops?.(c)).toEqual([
      { op: "get", key: { tag: "s:alice", name: "loc" } },
    ]);
    expect(impossibleTravel.record?.(c, outcome(true, false))).toEqual([]);
    const ops = impossibleTravel.record?.(c, outcome(true, true)) ?? [];
    expect(ops).toEqual([
      {
        op: "swap",
        key: { tag: "s:alice", name: "loc" },
        value: `48.8566,2.3522,${NOW / 1000},FR`,
        ttlMs: 30 * 86400 * 1000,
      },
    ]);
  });

  it("scores Paris -> Sydney in one hour, not in one day", () => {
    const fast = impossibleTravel.evaluate(ctx({ location: sydney }), [
      { previous: at(paris, 3600) },
    ]);
    expect(fast.reasons[0]).toMatchObject({ code: "geo.impossible_travel", points: 40 });
    expect(fast.reasons[0]?.detail).toMatch(/^169\d\d km at 169\d\d km\/h$/);
    const slow = impossibleTravel.evaluate(ctx({ location: sydney }), [
      { previous: at(paris, 86400) },
    ]);
    expect(slow.reasons).toEqual([]);
  });

  it("ignores the first sighting, short hops and junk state", () => {
    expect(
      impossibleTravel.evaluate(ctx({ location: paris }), [{ previous: null }]).reasons,
    ).toEqual([]);
    // 20 km in one second is geo noise below min_distance_km
    expect(
      impossibleTravel.evaluate(ctx({ location: versailles }), [{ previous: at(paris, 1) }])
        .reasons,
    ).toEqual([]);
    for (const junk of ["garbage", "48.8566,2.3522", ",2.3522,1", "48.8566,,1", "a,b,c,FR"]) {
      expect(
        impossibleTravel.evaluate(ctx({ location: sydney }), [{ previous: junk }]).reasons,
      ).toEqual([]);
    }
    // a sighting stored without its country still counts
    expect(
      impossibleTravel.evaluate(ctx({ location: sydney }), [
        { previous: at(paris, 3600).replace(/,FR$/, "") },
      ]).reasons,
    ).toHaveLength(1);
  });

  it("is off without coordinates and for anonymous callers", () => {
    expect(impossibleTravel.enabled(ctx({ location: { country: "FR" } }))).toBe(false);
    expect(
      impossibleTravel.enabled(ctx({ location: paris, caller: anonymousCaller("free", "x") })),
    ).toBe(false);
  });
});

describe("geo: country lists and new country", () => {
  const geo = {
    lookup: () => undefined,
    description: "",
    data: { city: true, asn: false },
    close() {},
  };
  const policy = policyWith("", [
    [
      "    entitlements: [api.read, api.write, reports.export]\n",
      "    entitlements: [api.read, api.write, reports.export]\n    countries: { deny: [kp, ir] }\n",
    ],
  ]);

  it("blocks a denied country and lets others pass", () => {
    const blocked = countryPolicy.evaluate(
      ctx({ policy, location: { country: "KP" }, env: { geo } }),
      [],
    );
    expect(blocked.block).toEqual({ code: "geo.country_denied", points: 0, detail: "KP" });
    expect(
      countryPolicy.evaluate(ctx({ policy, location: { country: "FR" }, env: { geo } }), []).block,
    ).toBe(undefined);
  });

  it("scores a new country only after the first", () => {
    const fr = ctx({ location: { country: "FR" } });
    // the reading is the set before this request (a `has`): size 0 is the first country
    expect(newCountry.evaluate(fr, [{ isNew: true, size: 0 }]).reasons).toEqual([]);
    expect(newCountry.evaluate(fr, [{ isNew: false, size: 2 }]).reasons).toEqual([]);
    expect(newCountry.evaluate(fr, [{ isNew: true, size: 1 }]).reasons).toEqual([
      { code: "geo.new_country", points: 15, detail: "FR" },
    ]);
  });
});

describe("IP reputation and hosting ASN", () => {
  const block = parseIpList("198.51.100.0/24 ; SBL1\n2001:db8::/32\n", "drop.txt").list;
  const allow = parseIpList("203.0.113.0/24\n", "office.txt").list;
  const policy = policyWith("", [
    [
      "  sensitivity:\n    enabled: true",
      "  ip_reputation:\n    block: [{ file: drop.txt, points: 50 }]\n    allow: [{ file: office.txt, points: 20 }]\n  hosting_asn: { enabled: true, file: asns.txt, points: 15 }\n  sensitivity:\n    enabled: true",
    ],
  ]);
  const env: Partial<SignalEnv> = {
    ipList: (f) => (f === "drop.txt" ? block : f === "office.txt" ? allow : undefined),
    asnList: (f) => (f === "asns.txt" ? parseAsnList("AS16509\n", f).list : undefined),
  };

  it("adds block-list points and subtracts allow-list points", () => {
    expect(ipReputation.evaluate(ctx({ policy, env }), []).reasons).toEqual([
      { code: "ip.blocklisted", points: 50, detail: "198.51.100.0/24" },
    ]);
    expect(
      ipReputation.evaluate(ctx({ policy, env, req: { clientIp: "203.0.113.5" } }), []).reasons,
    ).toEqual([{ code: "ip.allowlisted", points: -20, detail: "203.0.113.0/24" }]);
    expect(
      ipReputation.evaluate(ctx({ policy, env, req: { clientIp: "192.0.2.1" } }), []).reasons,
    ).toEqual([]);
  });

  it("scores a hosting ASN", () => {
    expect(hostingAsn.evaluate(ctx({ policy, env, location: { asn: 16509 } }), []).reasons).toEqual(
      [{ code: "ip.hosting_asn", points: 15, detail: "AS16509" }],
    );
    expect(hostingAsn.evaluate(ctx({ policy, env, location: { asn: 3320 } }), []).reasons).toEqual(
      [],
    );
  });

  it("does not count a hosting network's location as the person's travel or country (a VPN exit)", () => {
    const berlin = "52.5200,13.4050," + String(NOW / 1000 - 600) + ",DE";
    const vpn = { asn: 16509, country: "NL", latitude: 52.37, longitude: 4.9 };
    const home = { asn: 3320, country: "NL", latitude: 52.37, longitude: 4.9 };
    const read = [{ previous: berlin }];
    const trusted = outcome(true, true);
    const onVpn = ctx({ policy, env, location: vpn });
    expect(impossibleTravel.evaluate(onVpn, read).reasons).toEqual([]);
    expect(impossibleTravel.record?.(onVpn, trusted)).toEqual([]);
    expect(newCountry.enabled(onVpn)).toBe(false);
    // the same place on a residential network is travel and a new country
    const there = ctx({ policy, env, location: home });
    expect(impossibleTravel.evaluate(there, read).reasons.map((r) => r.code)).toEqual([
      "geo.impossible_travel",
    ]);
    expect(impossibleTravel.record?.(there, trusted)).toHaveLength(1);
    expect(newCountry.enabled(there)).toBe(true);
  });
});

describe("devices", () => {
  it("scores a new device only after the first", () => {
    const c = ctx({ req: { headers: new Map([["x-device-id", "dev-2"]]) } });
    expect(newDevice.enabled(c)).toBe(true);
    expect(newDevice.ops?.(c)).toEqual([
      { op: "has", key: { tag: "s:alice", name: "devices" }, member: "dev-2" },
    ]);
    expect(newDevice.record?.(c, outcome(true, false))).toEqual([]);
    expect(newDevice.record?.(c, outcome(true, true))).toEqual([
      {
        op: "member",
        key: { tag: "s:alice", name: "devices" },
        member: "dev-2",
        ttlMs: 90 * 86400 * 1000,
        max: 20,
      },
    ]);
    expect(newDevice.evaluate(c, [{ isNew: true, size: 0 }]).reasons).toEqual([]);
    expect(newDevice.evaluate(c, [{ isNew: false, size: 1 }]).reasons).toEqual([]);
    expect(newDevice.evaluate(c, [{ isNew: true, size: 1 }]).reasons).toEqual([
      { code: "device.new", points: 10 },
    ]);
    expect(newDevice.enabled(ctx())).toBe(false);
  });

  it("scores a missing or non-compliant posture header and a missing mTLS identity", () => {
    const policy = policyWith("", [
      [
        "  sensitivity:\n    enabled: true",
        "  device: { posture_header: x-device-posture, no_mtls_points: 5 }\n  sensitivity:\n    enabled: true",
      ],
    ]);
    expect(devicePosture.evaluate(ctx({ policy }), []).reasons).toEqual([
      { code: "device.posture", points: 15, detail: "absent" },
      { code: "device.no_mtls", points: 5 },
    ]);
    const good = ctx({
      policy,
      req: { headers: new Map([["x-device-posture", "Compliant"]]), principal: "spiffe://x" },
    });
    expect(devicePosture.evaluate(good, []).reasons).toEqual([]);
  });
});

describe("usage anomaly", () => {
  it("flags a burst far above the subject's own baseline", () => {
    expect(isAnomalous({ current: 200, mean: 20, variance: 25, samples: 30 }, 4)).toBe(true);
    expect(isAnomalous({ current: 35, mean: 20, variance: 25, samples: 30 }, 4)).toBe(false);
    // a flat baseline still needs more than `sigmas` requests above the mean
    expect(isAnomalous({ current: 23, mean: 20, variance: 0, samples: 30 }, 4)).toBe(false);
    // the store's reading is before this request: 199 counted, this one makes 200
    const c = ctx();
    expect(
      usageAnomaly.evaluate(c, [{ current: 199, mean: 20, variance: 25, samples: 30 }]).reasons,
    ).toEqual([{ code: "usage.anomaly", points: 20, detail: "200 vs mean 20.0" }]);
    expect(
      usageAnomaly.evaluate(c, [{ current: 199, mean: 20, variance: 25, samples: 3 }]).reasons,
    ).toEqual([]);
    expect(
      usageAnomaly.evaluate(c, [{ current: 14, mean: 1, variance: 0, samples: 30 }]).reasons,
    ).toEqual([]);
  });

  it("reads the baseline before the verdict and counts only a trusted request after it", () => {
    const c = ctx();
    const [read] = usageAnomaly.ops?.(c) ?? [];
    expect(read).toMatchObject({ op: "baseline", key: { name: "base" }, cost: 0 });
    const trusted = usageAnomaly.record?.(c, outcome(true, true)) ?? [];
    expect(trusted).toEqual([{ ...read, cost: 1 }]);
    // refused, or served without trust (shadow mode, a header-style challenge): not learnt
    expect(
      usageAnomaly.record?.(c, outcome(false, false, { ...ALLOWED, kind: "deny", cause: "risk" })),
    ).toEqual([]);
    expect(usageAnomaly.record?.(c, outcome(true, false))).toEqual([]);
  });
});

describe("request shape", () => {
  it("scores oversized bodies, unusual methods and automation user agents", () => {
    const c = ctx({
      req: {
        method: "TRACE",
        size: 50 * 1024 * 1024,
        headers: new Map([["user-agent", "python-requests/2.31"]]),
      },
    });
    expect(requestShape.evaluate(c, []).reasons.map((r) => r.code)).toEqual([
      "request.oversized",
      "request.unusual_method",
      "request.automation",
    ]);
    const mixedCase = policyWith("", [
      [
        "  sensitivity:\n    enabled: true",
        "  request_shape: { automation_user_agents: [MyBot] }\n  sensitivity:\n    enabled: true",
      ],
    ]);
    const bot = ctx({
      policy: mixedCase,
      req: { headers: new Map([["user-agent", "MYBOT/2.0"]]) },
    });
    expect(requestShape.evaluate(bot, []).reasons.map((r) => r.code)).toEqual([
      "request.automation",
    ]);
    const browser = ctx({
      req: { headers: new Map([["user-agent", "Mozilla/5.0 Firefox/128.0"]]) },
    });
    expect(requestShape.evaluate(browser, []).reasons).toEqual([]);
  });
});

describe("failed attempts", () => {
  it("reads denial counters and distinct subjects per IP", () => {
    const c = ctx();
    expect(failedAttempts.ops?.(c).map((o) => [o.op, o.key.tag, o.key.name])).toEqual([
      ["window", "s:alice", "fail"],
      ["window", "ip:198.51.100.10", "fail"],
      ["distinct", "ip:198.51.100.10", "subjects"],
      ["distinct", "ip:198.51.100.0/24", "subjects"],
      ["distinct", "ip:198.51.100.10", "tokens"],
    ]);
    const found = failedAttempts.evaluate(c, [
      { count: 5, resetMs: 1 },
      { count: 3, resetMs: 1 },
      { count: 12 },
    ]);
    expect(found.reasons.map((r) => r.code)).toEqual([
      "attempts.failed_subject",
      "attempts.distinct_subjects_ip",
    ]);
  });

  it("records authentication and license denials, nothing else, when risk refusals are off", () => {
    const req = ctx().req;
    const cfg = { window_seconds: 600, count_risk_refusals: false };
    const denial = { requestId: "r", score: 0, reasons: [], subject: "bob" };
    expect(failureRecord({ ...denial, kind: "deny", cause: "license" }, req, cfg)).toEqual([
      { op: "window", key: { tag: "ip:198.51.100.10", name: "fail" }, windowMs: 600_000, cost: 1 },
      { op: "window", key: { tag: "s:bob", name: "fail" }, windowMs: 600_000, cost: 1 },
    ]);
    expect(failureRecord({ ...denial, kind: "deny", cause: "risk" }, req, cfg)).toEqual([]);
    expect(failureRecord({ ...denial, kind: "allow" }, req, cfg)).toEqual([]);
  });

  it("counts risk denials and challenges against the IP (the default), not the subject", () => {
    const req = ctx().req;
    const cfg = { window_seconds: 600, count_risk_refusals: true };
    const denial = { requestId: "r", score: 60, reasons: [], subject: "bob" };
    const both = [
      { op: "window", key: { tag: "ip:198.51.100.10", name: "fail" }, windowMs: 600_000, cost: 1 },
    ];
    expect(failureRecord({ ...denial, kind: "deny", cause: "risk" }, req, cfg)).toEqual(both);
    expect(
      failureRecord({ ...denial, kind: "challenge", style: "step_up", acrValues: "mfa" }, req, cfg),
    ).toEqual(both);
    expect(failureRecord({ ...denial, kind: "allow" }, req, cfg)).toEqual([]);
  });
});

describe("org velocity and quota", () => {
  it("throttles an org over its window limit", () => {
    const policy = policyWith("", [
      [
        "limits: { requests_per_window: 300 }",
        "limits: { requests_per_window: 300, org_requests_per_window: 1000 }",
      ],
    ]);
    const c = ctx({ policy });
    expect(orgVelocity.enabled(c)).toBe(true);
    // the org window is read before the verdict (cost 0): this request makes 1001
    expect(orgVelocity.ops?.(c)).toMatchObject([{ op: "window", cost: 0 }]);
    expect(orgVelocity.record?.(c, outcome(false, false))).toEqual([]);
    expect(orgVelocity.record?.(c, outcome(true, false))).toMatchObject([
      { op: "window", key: { tag: "o:acme", name: "rate" }, cost: 1, limit: 1000 },
    ]);
    expect(orgVelocity.evaluate(c, [{ count: 1000, resetMs: 2500 }]).throttle).toEqual({
      retryAfterSeconds: 3,
      reason: { code: "velocity.org", points: 0, detail: "1001/1000 per 60s" },
    });
    expect(orgVelocity.enabled(ctx({ policy, caller: { ...caller, org: "" } }))).toBe(false);
  });

  it("counts per calendar period and throttles until the next one", () => {
    expect(quotaPeriod("month", NOW)).toEqual({ id: "2026-11", endsAt: Date.UTC(2026, 11, 1) });
    expect(quotaPeriod("day", Date.UTC(2026, 11, 31, 23, 0))).toEqual({
      id: "2026-12-31",
      endsAt: Date.UTC(2027, 0, 1),
    });
    // the period's id is the ISO date's prefix, at every time of day and every edge
    for (let t = Date.UTC(1999, 11, 31, 23); t < Date.UTC(2001, 0, 2); t += 3_599_999) {
      const iso = new Date(t).toISOString();
      expect(quotaPeriod("day", t).id).toBe(iso.slice(0, 10));
      expect(quotaPeriod("month", t).id).toBe(iso.slice(0, 7));
    }
    const policy = policyWith("", [
      [
        "limits: { requests_per_window: 300 }",
        "limits: { requests_per_window: 300 }\n    quota: { requests: 1000, period: day }",
      ],
    ]);
    const c = ctx({ policy });
    const op = {
      op: "count",
      key: { tag: "o:acme", name: "quota:2026-11-22" },
      cost: 0,
      ttlMs: 12 * 3600_000 + 86_400_000,
    };
    expect(quota.ops?.(c)).toEqual([op]);
    expect(quota.record?.(c, outcome(false, false))).toEqual([]);
    expect(quota.record?.(c, outcome(true, false))).toEqual([{ ...op, cost: 1 }]);
    expect(quota.evaluate(c, [{ count: 1000 }]).throttle?.retryAfterSeconds).toBe(12 * 3600);
    expect(quota.evaluate(c, [{ count: 950 }]).reasons.map((r) => r.code)).toEqual(["quota.near"]);
  });
});
