import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, pipelineCheck } from "../helpers/pipeline-check.js";

// A machine judged against its own trusted history: egress networks and ASNs, hours, cadence.
// Whole pipeline on memory state, fixed clock (the store's ops run against Redis in the store
// contract suite).

const demo = readFileSync("policies/demo.yaml", "utf8");
const H = 3_600_000;
const NAT_A = "198.51.100.10"; // AWS, the machine's usual NAT address
const NAT_B = "198.51.101.20"; // AWS, another /24 of the same ASN
const OFFICE = "192.0.2.10"; // the company's data centre
const ELSEWHERE = "203.0.113.50"; // an ASN it never used
const where: Record<string, GeoLocation> = {
  [NAT_A]: { country: "US", latitude: 39.04, longitude: -77.49, asn: 16509 },
  [NAT_B]: { country: "US", latitude: 39.04, longitude: -77.49, asn: 16509 },
  [OFFICE]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [ELSEWHERE]: { country: "NL", latitude: 52.37, longitude: 4.9, asn: 60781 },
};
const claims = {
  svc: { sub: "0oa-svc", cid: "0oa-svc", tier: "enterprise", org: "big" },
  person: { sub: "u-1", tier: "enterprise", org: "big", amr: ["mfa"] },
};
const machineCodes = (v: { reasons: readonly { code: string }[] }) =>
  codes(v).filter((c) => c.startsWith("machine."));

function setup() {
  const check = pipelineCheck(demo, {
    claims,
    geo: fixedGeo(where, { city: true, asn: true }),
  });
  return (token: string, ip: string, at: number) =>
    check(token, {
      clientIp: ip,
      receivedAt: at,
      headers: new Map([["user-agent", "python-requests/2.32"]]),
    });
}

describe("a machine judged against itself (signals.machine_baseline)", () => {
  it("finds nothing while a new machine learns, then a network and ASN it never used", async () => {
    const check = setup();
    // its first hours: anything goes, and what was allowed is learnt
    for (const [ip, at] of [
      [NAT_A, TEST_NOW],
      [OFFICE, TEST_NOW + 60_000],
    ] as const) {
      const v = await check("svc", ip, at);
      expect([v.kind, machineCodes(v)]).toEqual(["allow", []]);
    }
    const later = TEST_NOW + 3 * H;
    // a library user agent from a cloud network it knows: nothing; another /24 of its ASN too
    expect(codes(await check("svc", NAT_A, later))).toEqual([]);
    expect(codes(await check("svc", NAT_B, later + 1000))).toEqual([]);
    const moved = await check("svc", ELSEWHERE, later + 2000);
    expect(machineCodes(moved)).toEqual(["machine.new_egress"]);
    // alone it is allowed (a moved integration goes on), and the allow teaches the network
    expect(moved.kind).toBe("allow");
    expect(machineCodes(await check("svc", ELSEWHERE, later + 3000))).toEqual([]);
  });

  it("finds a burst far above its trusted peak, and a burst teaches nothing", async () => {
    const check = setup();
    for (let i = 0; i < 10; i++) await check("svc", NAT_A, TEST_NOW + i * 1000);
    const later = TEST_NOW + 3 * H;
    const found: string[][] = [];
    for (let i = 0; i < 70; i++) found.push(machineCodes(await check("svc", NAT_A, later + i)));
    // 4 x its peak of 10 is 40, but a burst needs at least 60 requests in the window
    expect(found.slice(0, 59).flat()).toEqual([]);
    expect(found.slice(59)).toEqual(new Array(11).fill(["machine.burst"]));
  });

  it("finds an hour of the day it never ran at, once it has a day of history", async () => {
    const check = setup();
    await check("svc", NAT_A, TEST_NOW); // 12:00 UTC
    // a new hour on its first day is still learning
    expect(machineCodes(await check("svc", NAT_A, TEST_NOW + 3 * H))).toEqual([]);
    expect(machineCodes(await check("svc", NAT_A, TEST_NOW + 24 * H))).toEqual([]);
    const night = await check("svc", NAT_A, TEST_NOW + 36 * H); // 00:00 UTC
    expect(machineCodes(night)).toEqual(["machine.off_hours"]);
    expect(night.kind).toBe("allow");
  });

  it("never judges a person's session this way", async () => {
    const check = setup();
    await check("person", NAT_A, TEST_NOW);
    const v = await check("person", ELSEWHERE, TEST_NOW + 36 * H);
    expect(machineCodes(v)).toEqual([]);
  });
});
