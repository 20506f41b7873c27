import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AccessRequest } from "../../src/access/request.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// A passed step-up ends the friction it answered and teaches the place, device and network; a
// stolen session (its auth_time from before the challenge) cannot pass it. Whole pipeline on
// the demo policy with a new country worth a challenge on its own, real (memory) state, fixed
// clock. The store ops (get, swap) run against Redis in the store contract suite.

const demoText = readFileSync("policies/demo.yaml", "utf8");
const policy = demoText.replace(
  "\nsignals:\n",
  "\nsignals:\n  new_country: { enabled: true, points: 50 }\n",
);

const BERLIN = "192.0.2.10";
const PARIS = "198.51.100.20";
const where: Record<string, GeoLocation> = {
  [BERLIN]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [PARIS]: { country: "FR", latitude: 48.857, longitude: 2.352, asn: 3215 },
};
const geo = fixedGeo(where, { city: true, asn: true });

const TRIP = 14 * 60; // minutes: a morning in Berlin, the evening in Paris
const session = (authAt: number, amr = ["pwd", "mfa"]) => ({
  sub: "u-ann",
  tier: "pro",
  org: "acme",
  amr,
  auth_time: Math.floor(authAt / 1000),
});
const claims = {
  // the morning's login, and a copy of it in a thief's hands
  morning: session(TEST_NOW - 3600_000),
  // a password-only login after the challenge: not the mfa the challenge asked for
  pwdAgain: session(minutes(TRIP + 1), ["pwd"]),
  // the step-up: a login with MFA after the challenge
  steppedUp: session(minutes(TRIP + 2)),
  // the next day's login, password only (it cannot pass the challenge: what it sees is learnt)
  nextDay: session(minutes(TRIP + 20 * 60), ["pwd"]),
};

function setup(store: Store = createMemoryStore()) {
  const check = pipelineCheck(policy, { claims, geo, store });
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

describe("a passed step-up", () => {
  it("clears the finding it answered and teaches the new country", async () => {
    const check = setup();
    expect((await check("morning", BERLIN, "laptop", 0)).kind).toBe("allow");
    const abroad = await check("morning", PARIS, "laptop", TRIP);
    expect(abroad.kind).toBe("challenge");
    expect(codes(abroad)).toContain("geo.new_country");
    // a login without the mfa asked for does not pass it
    const weak = await check("pwdAgain", PARIS, "laptop", TRIP + 1.5);
    expect(codes(weak)).not.toContain("challenge.stepped_up");
    expect(codes(weak)).toContain("geo.new_country");
    // the person logs in again with MFA and retries: the new country is answered
    const stepped = await check("steppedUp", PARIS, "laptop", TRIP + 3);
    expect(stepped.kind).toBe("allow");
    expect(codes(stepped)).toContain("challenge.stepped_up");
    expect(codes(stepped)).not.toContain("geo.new_country");
    const next = await check("steppedUp", PARIS, "laptop", TRIP + 4);
    expect(next.kind).toBe("allow");
    // France was taught, not only cleared: the next day's session from Paris is at home
    const tomorrow = await check("nextDay", PARIS, "laptop", TRIP + 20 * 60 + 5);
    expect(tomorrow.kind).toBe("allow");
    expect(codes(tomorrow)).toEqual(["auth.weak"]);
  });

  it("cannot be passed with a stolen session: the thief stays refused", async () => {
    const check = setup();
    expect((await check("morning", BERLIN, "laptop", 0)).kind).toBe("allow");
    // the thief replays the morning's session from Paris on its own machine, for hours
    for (let at = TRIP; at < TRIP + 180; at += 20) {
      const v = await check("morning", PARIS, "thief-pc", at);
      expect(["challenge", "deny"], `at ${at}`).toContain(v.kind);
      expect(codes(v)).not.toContain("challenge.stepped_up");
    }
    // and the next night, after a day's pause (within the sticky mark's week)
    const nextNight = await check("morning", PARIS, "thief-pc", TRIP + 24 * 60);
    expect(["challenge", "deny"]).toContain(nextNight.kind);
    expect(codes(nextNight)).toEqual(
      expect.arrayContaining(["geo.new_country", "device.new", "risk.sticky"]),
    );
  });

  it("with a valid clearance bound to the subject also answers the challenge", async () => {
    const check = setup();
    expect((await check("morning", BERLIN, "laptop", 0)).kind).toBe("allow");
    expect((await check("morning", PARIS, "laptop", TRIP)).kind).toBe("challenge");
    const cleared = await check("morning", PARIS, "laptop", TRIP + 1, {
      clearance: { kind: "valid", subject: "u-ann", mechanism: "pow" },
    });
    expect(codes(cleared)).toContain("challenge.stepped_up");
    expect(codes(cleared)).not.toContain("geo.new_country");
    expect(cleared.kind).toBe("allow");
    // a clearance issued to someone else does not
    const other = await check("morning", PARIS, "laptop", TRIP + 2, {
      clearance: { kind: "valid", subject: "u-bob", mechanism: "pow" },
    });
    expect(codes(other)).not.toContain("challenge.stepped_up");
  });
});
