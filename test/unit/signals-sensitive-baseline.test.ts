import { describe, expect, it } from "vitest";
import type { Verdict } from "../../src/access/verdict.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { codes, pipelineCheck } from "../helpers/pipeline-check.js";

// The insider's night export, whole pipeline on a policy of tiers and routes (the signal is on
// by default), real memory state, a fixed clock per request. The store ops it uses (get, swap,
// window, baseline) run against Redis in the store contract suite.

const policy = `
version: 1
identity:
  issuers: ["https://idp.example/"]
  audiences: ["api"]
  jwks: { file: "unused.json" }
tiers:
  pro:
    entitlements: [api.read, reports.export]
    risk: { challenge_at: 40, deny_at: 80 }
routes:
  - name: export
    match: { path: { pattern: "/v1/reports/[^/]+/export" } }
    entitlement: reports.export
    sensitivity: medium
  - name: read
    match: { path: { prefix: /v1/ } }
    entitlement: api.read
signals:
  weak_auth: { enabled: false }
  stale_auth: { enabled: false }
`;

const H = 3_600_000;
const DAY = 24 * H;
/** Midnight UTC of the first day of history (four days before the day under test). */
const START = Math.floor(TEST_NOW / DAY) * DAY - 4 * DAY;
const at = (day: number, hour: number, minute = 0) =>
  START + day * DAY + hour * H + minute * 60_000;

const person = (sub: string) => ({ sub, tier: "pro", org: "acme", amr: ["mfa"] });
const claims = {
  ana: person("u-ana"),
  bo: person("u-bo"),
  cy: person("u-cy"),
  newbie: person("u-newbie"),
  // ana again, logged in with MFA at 23:30 on the day under test: a passed step-up
  anaSteppedUp: { ...person("u-ana"), auth_time: Math.floor(at(4, 23, 30) / 1000) },
};

type Check = (token: string, path: string, when: number) => Promise<Verdict>;

function setup(text = policy): Check {
  const check = pipelineCheck(text, { claims });
  return (token, path, when) => check(token, { path, receivedAt: when });
}

/** A working day: `exports` exports and as many page reads, from 9:00 UTC, 20 minutes apart. */
async function workDay(check: Check, token: string, day: number, exports = 10): Promise<Verdict[]> {
  const verdicts: Verdict[] = [];
  for (let i = 0; i < exports; i++) {
    verdicts.push(await check(token, `/v1/projects/${i}`, at(day, 9, i * 40)));
    verdicts.push(await check(token, `/v1/reports/r${i}/export`, at(day, 9, i * 40 + 20)));
  }
  return verdicts;
}

/** `n` exports one a minute from `hour` on day `day`. */
async function exportRun(check: Check, token: string, day: number, hour: number, n: number) {
  const verdicts: Verdict[] = [];
  for (let i = 0; i < n; i++) {
    verdicts.push(await check(token, `/v1/reports/n${i}/export`, at(day, hour, i)));
  }
  return verdicts;
}

const sensitiveCodes = (v: Verdict) => codes(v).filter((c) => c.startsWith("sensitive."));

describe("sensitive-route baseline per person", () => {
  it("does not flag a person's normal working day", async () => {
    const check = setup();
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    const today = await workDay(check, "ana", 4);
    expect(today.map((v) => v.kind)).toEqual(today.map(() => "allow"));
    expect(today.flatMap(sensitiveCodes)).toEqual([]);
  });

  it("steps up a night's export run past half the usual day", async () => {
    const check = setup();
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    await workDay(check, "ana", 4);
    // 23:00 UTC, never worked: half the usual day (10) is under the shortest run (8), so the
    // 9th export of the run steps up
    const night = await exportRun(check, "ana", 4, 23, 30);
    expect(night.slice(0, 8).map((v) => v.kind)).toEqual(Array(8).fill("allow"));
    expect(night.slice(0, 8).flatMap(sensitiveCodes)).toEqual([]);
    expect(night[8]?.kind).toBe("challenge");
    expect(sensitiveCodes(night[8] as Verdict)).toEqual(["sensitive.off_hours_volume"]);
    // a refused export is not served: the run stays at the step-up line, no deny
    expect(night.slice(8).map((v) => v.kind)).toEqual(Array(22).fill("challenge"));
  });

  it("keeps the night's export run a finding after a passed step-up (the insider holds their MFA)", async () => {
    const check = setup();
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    await workDay(check, "ana", 4);
    const night = await exportRun(check, "ana", 4, 23, 12);
    expect(night[8]?.kind).toBe("challenge");
    // the insider logs in again with MFA: the step-up is passed, and the export is still
    // refused for what it is, not for who sent it
    const read = await check("anaSteppedUp", "/v1/projects/late", at(4, 23, 31));
    expect(codes(read)).toContain("challenge.stepped_up");
    const after = await check("anaSteppedUp", "/v1/reports/late/export", at(4, 23, 32));
    expect(codes(after)).toContain("challenge.stepped_up");
    expect(sensitiveCodes(after)).toEqual(["sensitive.off_hours_volume"]);
    expect(after.kind).toBe("challenge");
  });

  it("denies a run let through once it is past twice the step-up line", async () => {
    // a policy (or a passed step-up) lets the flagged exports through: served exports count
    // toward the run, and past a day's worth no step-up answers
    const check = setup(
      policy.replace(
        "risk: { challenge_at: 40, deny_at: 80 }",
        "risk: { challenge_at: 95, deny_at: 99 }",
      ),
    );
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    await workDay(check, "ana", 4);
    const night = await exportRun(check, "ana", 4, 23, 30);
    // the usual day (10) is under twice the step-up line (8): denied past 16
    expect(night.findIndex((v) => v.kind === "deny")).toBe(16);
    expect(night[16]?.reasons).toContainEqual(
      expect.objectContaining({ code: "sensitive.off_hours_volume", points: 45 }),
    );
  });

  it("steps up before it denies when the usual day is small (a few admin requests a day)", async () => {
    const check = setup();
    for (let d = 0; d < 5; d++) await workDay(check, "ana", d, 2);
    // the usual day is the floor (5): a few requests at a new hour pass, a run steps up first
    const night = await exportRun(check, "ana", 4, 23, 12);
    expect(night.slice(0, 8).map((v) => v.kind)).toEqual(Array(8).fill("allow"));
    expect(night.slice(8).map((v) => v.kind)).toEqual(Array(4).fill("challenge"));
  });

  it("lets a person work at new hours at the usual pace (a traveller, a late evening)", async () => {
    const check = setup();
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    // a whole usual day of exports, from 20:00 UTC, 20 minutes apart
    const verdicts: Verdict[] = [];
    for (let i = 0; i < 10; i++) {
      verdicts.push(await check("ana", `/v1/reports/t${i}/export`, at(4, 20, i * 20)));
    }
    expect(verdicts.map((v) => v.kind)).toEqual(Array(10).fill("allow"));
    expect(verdicts.flatMap(sensitiveCodes)).toEqual([]);
  });

  it("scores volume alone at a usual hour with a few points", async () => {
    const check = setup();
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    const busy = await exportRun(check, "ana", 4, 10, 35);
    expect(busy.map((v) => v.kind)).toEqual(busy.map(() => "allow"));
    expect(sensitiveCodes(busy[34] as Verdict)).toEqual(["sensitive.volume"]);
    expect(busy[34]?.reasons).toContainEqual(expect.objectContaining({ points: 10 }));
    // the last 24 hours hold part of yesterday's exports too: flagged past about 25 of today's
    expect(busy.slice(0, 15).flatMap(sensitiveCodes)).toEqual([]);
  });

  it("judges a new person against the org's usual day and hours", async () => {
    const check = setup();
    for (let d = 0; d < 4; d++) {
      await workDay(check, "bo", d);
      await workDay(check, "cy", d);
    }
    // the newcomer's first day looks like the org's: nothing
    const day = await workDay(check, "newbie", 4);
    expect(day.flatMap(sensitiveCodes)).toEqual([]);
    // at night, an hour nobody in the org works: a run of 8 (over half the org's usual day)
    const night = await exportRun(check, "newbie", 4, 23, 15);
    expect(night.slice(0, 8).flatMap(sensitiveCodes)).toEqual([]);
    expect(night[8]?.kind).toBe("challenge");
    expect(sensitiveCodes(night[8] as Verdict)).toEqual(["sensitive.off_hours_volume"]);
  });

  it("counts an hour as worked from the day after it was first seen", async () => {
    const check = setup(`${policy}  sensitive_baseline: { hour_points: 5 }\n`);
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    await check("ana", "/v1/projects/1", at(3, 21));
    expect(sensitiveCodes(await check("ana", "/v1/reports/x/export", at(3, 21, 5)))).toEqual([
      "sensitive.off_hours",
    ]);
    expect(sensitiveCodes(await check("ana", "/v1/reports/y/export", at(4, 21)))).toEqual([]);
  });

  it("is off when the policy turns it off", async () => {
    const check = setup(`${policy}  sensitive_baseline: { enabled: false }\n`);
    for (let d = 0; d < 4; d++) await workDay(check, "ana", d);
    const night = await exportRun(check, "ana", 4, 23, 30);
    expect(night.flatMap(sensitiveCodes)).toEqual([]);
  });
});
