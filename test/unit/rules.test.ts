import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import { PolicyError } from "../../src/errors.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { parseIpList } from "../../src/geo/ip-list.js";
import { createExplainTrace, renderExplanation } from "../../src/replay/explain.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// Without rules a signal could not throttle, challenge or deny by itself, and signals could not
// be combined. The `rules:` table, over the whole pipeline with real (memory) state and lists.

// the demo policy without its rules, sticky risk and one-token-many-places (on by default; tests
// add the ones they exercise)
const demoText = readFileSync("policies/demo.yaml", "utf8")
  .replace(/^rules:[\s\S]*?(?=^\S)/m, "")
  .replace(/^ {2}sticky_risk:.*\n/m, "  places: { enabled: false }\n");

const BERLIN = "192.0.2.10";
const SAO_PAULO = "198.51.100.20";
const DROP_IP = "198.18.0.5";
const OFFICE_IP = "198.18.0.9";
const places: Record<string, GeoLocation> = {
  [BERLIN]: { country: "DE", latitude: 52.52, longitude: 13.405 },
  [SAO_PAULO]: { country: "BR", latitude: -23.55, longitude: -46.633 },
};
const geo = fixedGeo(places);
const lists = {
  "drop.txt": parseIpList("198.18.0.0/24\n", "drop.txt").list,
  "office.txt": parseIpList("198.18.0.9\n", "office.txt").list,
} as const;

const claims = {
  owner: { sub: "u-owner", tier: "pro", org: "acme", amr: ["mfa"] },
  weak: { sub: "u-weak", tier: "pro", org: "acme", amr: ["pwd"] },
  // a client-credentials token: the subject is the OAuth client itself
  svc: { sub: "svc-sync", client_id: "svc-sync", tier: "pro", org: "acme" },
  bare: { sub: "u-bare", tier: "pro", org: "acme" },
  // the owner after a new login, 20 minutes into the tests' clock
  fresh: {
    sub: "u-owner",
    tier: "pro",
    org: "acme",
    amr: ["mfa"],
    auth_time: TEST_NOW / 1000 + 1200,
  },
};

function setup(extra: string, signals = "") {
  const text =
    (signals === "" ? demoText : demoText.replace(/^signals:\n/m, `signals:\n${signals}`)) + extra;
  return pipelineCheck(text, {
    claims,
    geo,
    lists: { ipList: (f) => lists[f as keyof typeof lists], asnList: () => undefined },
  });
}

describe("rules force an outcome the score would not", () => {
  it("denies when two signals fire together, though their points stay under deny_at", async () => {
    const check = setup(`
rules:
  - name: travel-abroad
    when: { reasons_all: [geo.impossible_travel, geo.new_country] }
    action: deny
`);
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    expect(thief).toMatchObject({ kind: "deny", cause: "risk" });
    expect(codes(thief)).toEqual([
      "geo.impossible_travel",
      "geo.new_country",
      "rule.travel-abroad",
    ]);
    expect(thief.score).toBeLessThan(85);
  });

  it("matches the client class: a script on a person's session, not an SDK's machine token", async () => {
    const check = setup(`
rules:
  - name: script-on-session
    when: { client_class: [browser], reasons_any: [request.automation] }
    action: deny
`);
    const curl = new Map([["user-agent", "curl/8.11.1"]]);
    const on = (token: string) => ({
      headers: new Map([...curl, ["authorization", `Bearer ${token}`]]),
    });
    // the owner's token records an interactive login (amr): a person's session
    expect(await check("owner", on("owner"))).toMatchObject({ kind: "deny", cause: "risk" });
    // a client-credentials token with the same user agent is a machine: no rule, no points
    const sdk = await check("svc", on("svc"));
    expect(sdk.kind).toBe("allow");
    expect(codes(sdk)).toEqual([]);
    // a token of unknown class (no interactive login recorded, not the client): scored, not ruled
    const unknown = await check("bare", on("bare"));
    expect(codes(unknown)).toContain("request.automation");
    expect(codes(unknown)).not.toContain("rule.script-on-session");
    // the person in a browser: no automation, no rule
    expect((await check("owner")).kind).toBe("allow");
  });

  it("takes the first matching rule, in order", async () => {
    const check = setup(`
rules:
  - name: writes-from-brazil
    when: { countries: [BR], methods: [post] }
    action: challenge
  - name: brazil
    when: { countries: [BR] }
    action: deny
`);
    const write = await check("owner", { clientIp: SAO_PAULO, method: "POST" });
    expect(write.kind).toBe("challenge");
    expect(codes(write)).toContain("rule.writes-from-brazil");
    const read = await check("owner", { clientIp: SAO_PAULO });
    expect(read).toMatchObject({ kind: "deny", cause: "risk" });
    expect(codes(read)).toContain("rule.brazil");
    expect(await check("owner", { clientIp: BERLIN })).toMatchObject({ kind: "allow" });
  });

  it("throttles with the rule's retry_after, and challenges weak logins on sensitive routes", async () => {
    const check = setup(`
rules:
  - name: weak-admin
    when: { sensitivity: [high], amr_lacks: [mfa, hwk, otp] }
    action: challenge
  - name: slow-anon
    when: { anonymous: false, routes: [api-write] }
    action: throttle
    retry_after_seconds: 30
`);
    const write = await check("owner", { method: "PUT" });
    expect(write).toMatchObject({ kind: "throttle", retryAfterSeconds: 30 });
    expect(await check("owner")).toMatchObject({ kind: "allow" });
    const weak = await check("weak", { path: "/v1/reports/1/export" });
    // reports-export is medium: the rule does not apply there
    expect(codes(weak)).not.toContain("rule.weak-admin");
  });

  it("a shadow rule only leaves a 0-point reason; the score decides", async () => {
    const check = setup(`
rules:
  - name: brazil
    when: { countries: [BR] }
    action: deny
    mode: shadow
`);
    const v = await check("owner", { clientIp: SAO_PAULO });
    expect(v.kind).toBe("allow");
    expect(v.reasons).toContainEqual({
      code: "rule.brazil",
      points: 0,
      detail: "shadow: would deny",
    });
  });

  it("a rule's allow does not lift a signal's throttle", async () => {
    const check = setup(`
rules:
  - name: everyone
    when: {}
    action: allow
`);
    let last = await check("owner");
    for (let i = 0; i < 400 && last.kind !== "throttle"; i++) last = await check("owner");
    expect(last.kind).toBe("throttle");
  });
});

describe("IP lists: a block list can hard-deny, an allow list lifts it only when told", () => {
  const signals = `  ip_reputation:
    block: [{ file: drop.txt, action: deny }]
    allow: [{ file: office.txt, points: 20 }]
`;
  it("denies a block-listed IP whatever the score, even when it is also allow-listed", async () => {
    const check = setup("", signals);
    const v = await check("owner", { clientIp: DROP_IP });
    expect(v).toMatchObject({ kind: "deny", cause: "risk" });
    expect(codes(v)).toContain("ip.blocklisted");
    expect(await check("owner", { clientIp: OFFICE_IP })).toMatchObject({ kind: "deny" });
    expect(await check("owner", { clientIp: BERLIN })).toMatchObject({ kind: "allow" });
  });

  it("lets an allow list with overrides_block through", async () => {
    const check = setup("", signals.replace("points: 20 }", "points: 20, overrides_block: true }"));
    expect(await check("owner", { clientIp: OFFICE_IP })).toMatchObject({ kind: "allow" });
    expect(await check("owner", { clientIp: DROP_IP })).toMatchObject({ kind: "deny" });
  });

  it("a rule can deny on an IP list the policy names", async () => {
    const check = setup(`
rules:
  - name: drop-net
    when: { ip_lists: [drop.txt], reasons_none: [ip.allowlisted] }
    action: deny
`);
    expect(await check("owner", { clientIp: DROP_IP })).toMatchObject({ kind: "deny" });
    expect(await check("owner", { clientIp: BERLIN })).toMatchObject({ kind: "allow" });
  });
});

describe("the rules section is validated, with errors naming the path", () => {
  const issues = (extra: string) => {
    try {
      parsePolicy(demoText + extra, "t.yaml");
    } catch (err) {
      if (err instanceof PolicyError) return err.issues.map((i) => i.path);
    }
    return [];
  };
  it("names a bad action, an unknown condition and a duplicate name", () => {
    expect(issues("rules:\n  - { name: a, action: block }\n")).toEqual(["rules[0].action"]);
    expect(issues("rules:\n  - { name: a, when: { colour: red }, action: deny }\n")).toEqual([
      "rules[0].when",
    ]);
    expect(
      issues("rules:\n  - { name: a, action: deny }\n  - { name: a, action: allow }\n"),
    ).toEqual(["rules[1].name"]);
  });

  it("refuses a reason code no signal can fire, which would silently disable the rule", () => {
    expect(
      issues(
        "rules:\n  - { name: a, when: { reasons_all: [geo.impossible_travel, geo.impossible_trip] }, action: deny }\n",
      ),
    ).toEqual(["rules[0].when.reasons_all[1]"]);
    // a placeholder of the registry is not a code
    expect(
      issues("rules:\n  - { name: a, when: { reasons_none: [rule.<name>] }, action: deny }\n"),
    ).toEqual(["rules[0].when.reasons_none[0]"]);
    // external.<name> only for names this policy's sources produce
    expect(
      issues("rules:\n  - { name: a, when: { reasons_any: [external.bot] }, action: deny }\n"),
    ).toEqual(["rules[0].when.reasons_any[0]"]);
    expect(
      issues(
        "rules:\n  - { name: a, when: { reasons_any: [external.webhook, ip.blocklisted] }, action: deny }\n",
      ),
    ).toEqual([]);
  });
});

describe("sticky risk: a subject refused for risk stays at raised risk", () => {
  const sticky = "  sticky_risk: { enabled: true, points: 30, duration_seconds: 3600 }\n";
  it("renews with each refusal: only a login after the last one, or silence past the bound, ends it", async () => {
    const check = setup(forceChallenge, sticky);
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    for (let m = 11; m < 75; m += 5) {
      expect((await check("owner", { clientIp: BERLIN, receivedAt: minutes(m) })).kind).toBe(
        "challenge",
      );
    }
    // refused past an hour from the first refusal; the last one was at 71 and the mark is
    // kept for duration_seconds (an hour here) after it
    const gone = await check("owner", { clientIp: BERLIN, receivedAt: minutes(132) });
    expect(gone).toMatchObject({ kind: "allow", reasons: [] });
  });
  const forceChallenge = `
rules:
  - name: sticky
    when: { reasons_any: [risk.sticky] }
    action: challenge
`;

  it("challenges the subject at home after a challenge abroad, until a fresh login", async () => {
    const check = setup(forceChallenge, sticky);
    expect(await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) })).toMatchObject({
      kind: "allow",
    });
    const thief = await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    expect(thief.kind).toBe("challenge");
    const home = await check("owner", { clientIp: BERLIN, receivedAt: minutes(12) });
    expect(home.kind).toBe("challenge");
    expect(codes(home)).toEqual(["risk.sticky", "rule.sticky"]);
    // a login after the refusal clears it (with MFA, the step-up the challenge asked for)
    const fresh = await check("fresh", { clientIp: BERLIN, receivedAt: minutes(21) });
    expect(fresh).toMatchObject({ kind: "allow", score: 0 });
    expect(codes(fresh)).toEqual(["challenge.stepped_up"]);
  });

  it("adds its points without a rule, and expires after duration_seconds", async () => {
    const check = setup("", sticky);
    await check("owner", { clientIp: BERLIN, receivedAt: minutes(0) });
    await check("owner", { clientIp: SAO_PAULO, receivedAt: minutes(10) });
    const home = await check("owner", { clientIp: BERLIN, receivedAt: minutes(12) });
    expect(home).toMatchObject({ kind: "allow", score: 30 });
    expect(codes(home)).toEqual(["risk.sticky"]);
    const later = await check("owner", { clientIp: BERLIN, receivedAt: minutes(71) });
    expect(later).toMatchObject({ kind: "allow", reasons: [] });
  });

  it("does not stick after a license denial", async () => {
    const check = setup(forceChallenge, sticky);
    const denied = await check("owner", { path: "/admin/users", receivedAt: minutes(0) });
    expect(denied).toMatchObject({ kind: "deny", cause: "license" });
    expect(await check("owner", { receivedAt: minutes(1) })).toMatchObject({ kind: "allow" });
  });
});

describe("riskgate explain shows which rule fired", () => {
  it("names the enforcing rule and the shadow matches", async () => {
    const policy = parsePolicy(
      `${demoText}
rules:
  - name: watch-brazil
    when: { countries: [BR] }
    action: challenge
    mode: shadow
  - name: brazil-writes
    when: { countries: [BR], methods: [POST] }
    action: deny
`,
      "t.yaml",
    );
    const runtime = policySnapshotOf(policy, fakeIdentifier(claims));
    const pipeline = createPipeline({ store: createMemoryStore(), clock: () => TEST_NOW, geo });
    const explainOf = async (method: string) => {
      const headers = new Map([["authorization", "Bearer owner"]]);
      const req = accessRequest({ headers, clientIp: SAO_PAULO, method });
      const { trace, explanation } = createExplainTrace();
      const decision = await pipeline.evaluate(runtime, req, trace);
      return renderExplanation(explanation, req, decision, policy);
    };
    expect(await explainOf("POST")).toMatch(
      /^rules {6}rule\.brazil-writes fired: deny; shadow: rule\.watch-brazil \(shadow: would challenge\)$/m,
    );
    expect(await explainOf("GET")).toMatch(
      /^rules {6}none of 2 matched; shadow: rule\.watch-brazil \(shadow: would challenge\)$/m,
    );
  });

  it("says the rules were not reached when a hard block decided first", async () => {
    const policy = parsePolicy(
      demoText.replace(
        /^signals:\n/m,
        "signals:\n  ip_reputation: { enabled: true, block: [{ file: drop.txt, action: deny }] }\n",
      ) +
        `rules:
  - name: let-it-through
    when: {}
    action: allow
`,
      "t.yaml",
    );
    const runtime = policySnapshotOf(policy, fakeIdentifier(claims), {
      ipList: (f) => lists[f as keyof typeof lists],
      asnList: () => undefined,
    });
    const pipeline = createPipeline({ store: createMemoryStore(), clock: () => TEST_NOW, geo });
    const req = accessRequest({
      headers: new Map([["authorization", "Bearer owner"]]),
      clientIp: DROP_IP,
    });
    const { trace, explanation } = createExplainTrace();
    const decision = await pipeline.evaluate(runtime, req, trace);
    expect(decision.enforced).toMatchObject({ kind: "deny", cause: "risk" });
    expect(renderExplanation(explanation, req, decision, policy)).toMatch(
      /^rules {6}not reached \(hard block ip\.blocklisted decided first\)$/m,
    );
  });
});
