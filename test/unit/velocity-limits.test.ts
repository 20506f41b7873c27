import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Verdict } from "../../src/access/verdict.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { pipelineCheck } from "../helpers/pipeline-check.js";

// "20 requests a minute" through the whole pipeline on the memory store, at fixed times: the
// outside probe that found the limit letting 22 through when a burst straddled a minute.

// the demo policy without its rules and sticky risk: the limit alone decides
const demoText = readFileSync("policies/demo.yaml", "utf8")
  .replace(/^rules:[\s\S]*?(?=^\S)/m, "")
  .replace(/^ {2}sticky_risk:.*\n/m, "");
/** The free tier's 20 a minute, also as an org limit (counting served requests only). */
const orgText = demoText.replace(
  "limits: { requests_per_window: 20 }",
  "limits: { requests_per_window: 1000, org_requests_per_window: 20 }",
);

const claims = {
  dave: { sub: "u-dave", tier: "free", org: "acme", amr: ["mfa"] },
  erin: { sub: "u-erin", tier: "free", org: "acme", amr: ["mfa"] },
};

/** 22 requests 1.25 s apart from `second` into a minute, by `who(i)`; their verdicts. */
async function burst(policyText: string, second: number, who: (i: number) => string) {
  const check = pipelineCheck(policyText, { claims });
  const start = TEST_NOW + second * 1000; // TEST_NOW is at a minute's start
  const verdicts: Verdict[] = [];
  for (let i = 0; i < 22; i++) {
    verdicts.push(await check(who(i), { receivedAt: start + i * 1250 }));
  }
  return verdicts;
}

const kinds = (vs: readonly Verdict[]) => vs.map((v) => v.kind);
const twentyThenThrottled = [...Array<string>(20).fill("allow"), "throttle", "throttle"];

describe('"20 requests a minute" at any phase of the minute', () => {
  for (const second of [0, 46]) {
    it(`throttles the 21st of 22 requests 1.25 s apart from second ${second}`, async () => {
      const verdicts = await burst(demoText, second, () => "dave");
      expect(kinds(verdicts)).toEqual(twentyThenThrottled);
    });
  }

  it("tells the 21st to retry when the first request it shares a minute with leaves it", async () => {
    const verdicts = await burst(demoText, 46, () => "dave");
    // the 21st (at 71 s) counts with the 2nd to the 20th: the 2nd (at 47.25 s) leaves the
    // minute at 107.25 s, 36.25 s later. A throttled attempt counts too (a client that ignores
    // Retry-After keeps itself throttled): the 22nd, 1.25 s on, waits as long for the 3rd.
    expect(verdicts[20]).toMatchObject({ kind: "throttle", retryAfterSeconds: 37 });
    expect(verdicts[21]).toMatchObject({ kind: "throttle", retryAfterSeconds: 37 });
  });

  it("holds an org's limit of served requests across the minute's edge", async () => {
    const verdicts = await burst(orgText, 46, (i) => (i % 2 === 0 ? "dave" : "erin"));
    expect(kinds(verdicts)).toEqual(twentyThenThrottled);
    expect(verdicts[20]?.reasons.map((r) => r.code)).toEqual(["velocity.org"]);
  });
});
