import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TEST_NOW } from "../helpers/access-request.js";
import { codes, pipelineCheck } from "../helpers/pipeline-check.js";

// A session token replayed from another device while its owner keeps working (a
// stolen token through a residential proxy in the owner's country). Whole pipeline on the demo
// policy (session_binding on, rule session-on-another-device), real (memory) state; the store
// ops it uses (get, swap) run against Redis in the store contract suite.

const demoText = readFileSync("policies/demo.yaml", "utf8");
const login = TEST_NOW / 1000 - 3600;
const claims = {
  // one login session, two hourly refreshes (same auth_time, different jti)
  s1: { sub: "u-owner", tier: "pro", org: "acme", amr: ["mfa"], auth_time: login, jti: "a" },
  s1b: { sub: "u-owner", tier: "pro", org: "acme", amr: ["mfa"], auth_time: login, jti: "b" },
  // a new login (on the new device)
  s2: { sub: "u-owner", tier: "pro", org: "acme", amr: ["mfa"], auth_time: login + 60 },
};

function setup(policyText = demoText) {
  const check = pipelineCheck(policyText, { claims });
  return (token: string, device: string, minute: number) =>
    check(token, {
      headers: new Map([["x-device-id", device]]),
      receivedAt: TEST_NOW + minute * 60_000,
    });
}

describe("session bound to its device", () => {
  it("steps up another device using the session while the bound device does", async () => {
    const check = setup();
    expect((await check("s1", "dev-owner", 0)).kind).toBe("allow");
    const thief = await check("s1b", "dev-thief", 2);
    expect(thief.kind).toBe("challenge");
    expect(codes(thief)).toContain("session.device_mismatch");
    expect(codes(thief)).toContain("rule.session-on-another-device");
    // the owner on its bound device is not blamed
    expect(codes(await check("s1", "dev-owner", 3))).not.toContain("session.device_mismatch");
  });

  it("keeps refusing a device that interleaved with the bound one, however long the owner is idle", async () => {
    const check = setup();
    await check("s1", "dev-owner", 0);
    // the owner went idle: the first replay is not parallel use yet
    expect(codes(await check("s1", "dev-thief", 20))).not.toContain("session.device_mismatch");
    // the owner comes back: the two interleave
    await check("s1", "dev-owner", 21);
    const later = await check("s1", "dev-thief", 60);
    expect(codes(later)).toContain("session.device_mismatch");
    expect(later.kind).toBe("challenge");
  });

  it("lets a person carry its session from one device to the next (one at a time)", async () => {
    const check = setup();
    await check("s1", "dev-phone", 0);
    for (const minute of [10, 30, 90]) {
      expect(codes(await check("s1", "dev-laptop", minute))).not.toContain(
        "session.device_mismatch",
      );
    }
  });

  it("binds a new login to its own device", async () => {
    const check = setup();
    await check("s1", "dev-owner", 0);
    expect(codes(await check("s2", "dev-new", 1))).not.toContain("session.device_mismatch");
  });

  it("is on by default, and off when the policy turns it off", async () => {
    const byDefault = setup(
      demoText.replace("session_binding: { enabled: true }", "session_binding: {}"),
    );
    await byDefault("s1", "dev-owner", 0);
    expect(codes(await byDefault("s1b", "dev-thief", 1))).toContain("session.device_mismatch");
    const off = setup(
      demoText.replace("session_binding: { enabled: true }", "session_binding: { enabled: false }"),
    );
    await off("s1", "dev-owner", 0);
    expect(codes(await off("s1", "dev-thief", 1))).not.toContain("session.device_mismatch");
  });
});
