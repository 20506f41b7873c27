import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AccessRequest } from "../../src/access/request.js";
import { SIGNALS } from "../../src/access/signals/index.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// Only trusted requests teach: an allow that carries an open finding (a new country, a new
// device) teaches the profile nothing, however low it scored. Whole pipeline on the demo
// policy, real (memory) state, fixed clock.

const demoText = readFileSync("policies/demo.yaml", "utf8");
const withSignals = (yaml: string) => demoText.replace("\nsignals:\n", `\nsignals:\n${yaml}`);

const BERLIN = "192.0.2.10";
const PARIS = "198.51.100.20";
const where: Record<string, GeoLocation> = {
  [BERLIN]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [PARIS]: { country: "FR", latitude: 48.857, longitude: 2.352, asn: 3215 },
};
const geo = fixedGeo(where, { city: true, asn: true });

const claims: Record<string, Record<string, unknown>> = {
  mfa: { sub: "u-mfa", tier: "pro", org: "acme", amr: ["pwd", "mfa"] },
  pwd: { sub: "u-pwd", tier: "pro", org: "acme", amr: ["pwd"] },
};

function setup(policyText: string) {
  const check = pipelineCheck(policyText, { claims, geo });
  return (
    token: string,
    ip: string,
    device: string,
    at: number,
    over: Partial<AccessRequest> = {},
  ) =>
    check(token, {
      clientIp: ip,
      receivedAt: minutes(at),
      headers: new Map([["x-device-id", device]]),
      ...over,
    });
}

describe("only trusted requests teach", () => {
  it("an allow scoring 30 with a new country and a new device teaches neither", async () => {
    const check = setup(withSignals("  device: { enabled: true, new_device_points: 15 }\n"));
    expect((await check("mfa", BERLIN, "laptop", 0)).kind).toBe("allow");
    // ten hours later from Paris on another device: under the threshold, allowed
    const first = await check("mfa", PARIS, "attacker-pc", 600);
    expect(first.kind).toBe("allow");
    expect(first.score).toBe(30);
    expect(codes(first)).toEqual(expect.arrayContaining(["geo.new_country", "device.new"]));
    // the allow taught nothing: the same place and device are still new
    const again = await check("mfa", PARIS, "attacker-pc", 601);
    expect(codes(again)).toEqual(expect.arrayContaining(["geo.new_country", "device.new"]));
    expect(again.score).toBe(30);
  });

  it("an allow whose findings only say the login is weak still teaches", async () => {
    const check = setup(demoText);
    const home = await check("pwd", BERLIN, "laptop", 0);
    expect(codes(home)).toEqual(["auth.weak"]);
    expect(home.kind).toBe("allow");
    // Germany and the laptop were learnt: France is a new country, the laptop is known
    const abroad = await check("pwd", PARIS, "laptop", 600);
    expect(codes(abroad)).toContain("geo.new_country");
    expect(codes(abroad)).not.toContain("device.new");
  });

  it("every code a signal says keeps trust is one of its own reasons", () => {
    for (const signal of SIGNALS) {
      const own = Object.keys(signal.reasons);
      for (const code of (signal as { keepsTrust?: readonly string[] }).keepsTrust ?? []) {
        expect(own, signal.name).toContain(code);
      }
    }
  });
});
