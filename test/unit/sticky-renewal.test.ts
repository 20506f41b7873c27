import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TEST_NOW } from "../helpers/access-request.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// Sticky risk renews with each refusal and ends only with a login after the last one. Whole
// pipeline on the demo policy (sticky risk on, a script on a person's session is challenged),
// real (memory) state, fixed clock.

const demoText = readFileSync("policies/demo.yaml", "utf8");
const withSticky = (yaml: string) =>
  demoText.replace(/\n {2}sticky_risk: [^\n]*\n/, `\n  sticky_risk: ${yaml}\n`);

const session = (authAt: number) => ({
  sub: "u-alice",
  tier: "pro",
  org: "acme",
  amr: ["pwd", "mfa"],
  auth_time: Math.floor(authAt / 1000),
});
const claims = {
  // the session in use since the morning (its login well before any refusal)
  old: session(TEST_NOW - 3 * 3600_000),
  // a login 25 minutes after the first refusal, and one after every refusal below
  login25: session(minutes(25)),
  login90: session(minutes(90)),
};

const SCRIPT = "curl/8.5.0";
const BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";

function setup(policyText = demoText) {
  const check = pipelineCheck(policyText, { claims });
  return (token: string, at: number, ua: string) =>
    check(token, { receivedAt: minutes(at), headers: new Map([["user-agent", ua]]) });
}

describe("sticky risk", () => {
  it("renews with each refusal: it never lapses while refusals keep coming", async () => {
    const check = setup();
    expect((await check("old", 0, SCRIPT)).kind).toBe("challenge");
    // every ten minutes the script is refused again, sticky or not
    for (const at of [10, 20, 30, 40]) {
      const v = await check("old", at, SCRIPT);
      expect(v.kind).toBe("challenge");
      expect(codes(v)).toContain("risk.sticky");
    }
    // 50 minutes after the first refusal, 10 after the last: still sticky
    const later = await check("old", 50, BROWSER);
    expect(later.kind).toBe("allow");
    expect(codes(later)).toContain("risk.sticky");
  });

  it("ends for a session that logged in after the last refusal, not for an older one", async () => {
    const check = setup();
    expect((await check("old", 0, SCRIPT)).kind).toBe("challenge");
    expect((await check("old", 20, SCRIPT)).kind).toBe("challenge");
    // a login at 25 minutes, after the last refusal (20): not sticky
    expect(codes(await check("login25", 26, BROWSER))).not.toContain("risk.sticky");
    // the old session (a stolen copy of it, say) still is
    expect(codes(await check("old", 27, BROWSER))).toContain("risk.sticky");
    // a refusal after the login renews the mark past it: that login no longer ends it
    expect((await check("old", 30, SCRIPT)).kind).toBe("challenge");
    expect(codes(await check("login25", 31, BROWSER))).toContain("risk.sticky");
    expect(codes(await check("login90", 91, BROWSER))).not.toContain("risk.sticky");
  });

  it("is forgotten duration_seconds after the last refusal, a bound on storage", async () => {
    const check = setup(withSticky("{ enabled: true, points: 20, duration_seconds: 3600 }"));
    expect((await check("old", 0, SCRIPT)).kind).toBe("challenge");
    expect((await check("old", 30, SCRIPT)).kind).toBe("challenge");
    expect(codes(await check("old", 89, BROWSER))).toContain("risk.sticky");
    expect(codes(await check("old", 91, BROWSER))).not.toContain("risk.sticky");
  });
});
