import { describe, expect, it } from "vitest";
import { createPipeline, type Pipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest, ClearanceFact } from "../../src/access/request.js";
import { parseIpList } from "../../src/geo/ip-list.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { renderCheckResponse } from "../../src/transport/check-response.js";
import { renderHttpAnswer } from "../../src/transport/http-response.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

// Who gets the interactive challenge, and what a clearance may and may not do.

const POLICY = `
version: 1
identity: { issuers: ["https://riskgate.dev/demo"], audiences: ["demo-api"] }
tiers:
  visitor:
    entitlements: [site.read]
    limits: { requests_per_window: 1000 }
    risk: { challenge_at: 30, deny_at: 90 }
anonymous_tier: visitor
routes:
  - { name: admin, match: { path: { prefix: /admin } }, entitlement: admin.users }
  - { name: step-up, match: { path: { prefix: /api } }, auth: optional, challenge_style: step_up }
  - { name: site, match: { path: { prefix: / } }, auth: optional, sensitivity: high }
signals:
  sensitivity: { points: { high: 40 } }
  sticky_risk: { enabled: true, points: 30, duration_seconds: 3600 }
  ip_reputation: { block: [{ file: drop.txt, action: deny }] }
decisions:
  challenge:
    style: interactive
    interactive: { clearance: { points: 30 } }
`;

const DROP_IP = "198.18.0.5";
const drop = parseIpList("198.18.0.0/24\n", "drop.txt").list;
const claims = {
  alice: { sub: "alice", tier: "visitor", amr: ["mfa"] },
  bot: { sub: "bot-1", tier: "visitor", amr: ["mfa"], gty: "client-credentials" },
};

function setup(text = POLICY): {
  pipeline: Pipeline;
  run: (r: AccessRequest) => ReturnType<Pipeline["evaluate"]>;
} {
  const runtime = policySnapshotOf(parsePolicy(text, "t.yaml"), fakeIdentifier(claims), {
    ipList: (f) => (f === "drop.txt" ? drop : undefined),
    asnList: () => undefined,
  });
  const pipeline = createPipeline({ store: createMemoryStore(), clock: () => TEST_NOW });
  return { pipeline, run: (r) => pipeline.evaluate(runtime, r) };
}

function browser(
  over: Partial<AccessRequest> & { token?: string; clearance?: ClearanceFact } = {},
) {
  const headers = new Map([["accept", "text/html,application/xhtml+xml"]]);
  if (over.token !== undefined) headers.set("authorization", `Bearer ${over.token}`);
  const { token: _t, ...rest } = over;
  return accessRequest({ path: "/home", headers, ...rest });
}

const codes = (v: { reasons: readonly { code: string }[] }) => v.reasons.map((r) => r.code);
const valid = (subject: string): ClearanceFact => ({ kind: "valid", subject, mechanism: "pow" });

describe("interactive challenge style", () => {
  it("sends a browser navigation (GET asking for HTML) to the page", async () => {
    const { verdict } = await setup().run(browser());
    expect(verdict).toMatchObject({ kind: "challenge", style: "interactive", score: 40 });
  });

  it("keeps the step-up for an API client and a POST; throttles a machine token", async () => {
    const { run } = setup();
    const api = await run(accessRequest({ path: "/home" }));
    expect(api.verdict).toMatchObject({ kind: "challenge", style: "step_up" });
    const post = await run(browser({ method: "POST" }));
    expect(post.verdict).toMatchObject({ kind: "challenge", style: "step_up" });
    // a machine cannot answer a step-up or a page: it is throttled instead
    const machine = await run(browser({ token: "bot" }));
    expect(machine.verdict).toMatchObject({ kind: "throttle" });
    expect(machine.verdict.reasons.at(-1)?.code).toBe("risk.no_challenge");
    // a person's session (browser class) calling the API without asking for HTML: no page
    const fetchCall = await run(
      accessRequest({
        path: "/home",
        headers: new Map([
          ["authorization", "Bearer alice"],
          ["accept", "application/json"],
        ]),
      }),
    );
    expect(fetchCall.verdict).toMatchObject({ kind: "challenge", style: "step_up" });
  });

  it("follows a route's challenge_style over the policy's", async () => {
    const { verdict } = await setup().run(browser({ path: "/api/x" }));
    expect(verdict.kind).toBe("allow"); // low sensitivity: no challenge at all
    const forced = POLICY.replace("sensitivity: high }", "sensitivity: high }").replace(
      "challenge_style: step_up }",
      "challenge_style: step_up, sensitivity: high }",
    );
    const again = await setup(forced).run(browser({ path: "/api/x" }));
    expect(again.verdict).toMatchObject({ kind: "challenge", style: "step_up" });
  });
});

describe("a clearance", () => {
  it("takes its points off the score: the cleared browser is let through", async () => {
    const { verdict } = await setup().run(browser({ clearance: valid("anon:s1") }));
    expect(verdict).toMatchObject({ kind: "allow", score: 10 });
    expect(verdict.reasons).toContainEqual({
      code: "challenge.cleared",
      points: -30,
      detail: "pow",
    });
  });

  it("counts only for the subject it was issued to", async () => {
    const { run } = setup();
    const mine = await run(browser({ token: "alice", clearance: valid("alice") }));
    expect(mine.verdict.kind).toBe("allow");
    const theirs = await run(browser({ token: "alice", clearance: valid("mallory") }));
    expect(theirs.verdict.kind).toBe("challenge");
    expect(codes(theirs.verdict)).toContain("challenge.clearance_rebound");
    // an anonymous session's clearance does not vouch for a signed-in subject
    const anon = await run(browser({ token: "alice", clearance: valid("anon:s1") }));
    expect(codes(anon.verdict)).toContain("challenge.clearance_rebound");
  });

  it("refused (forged, expired, replayed) is ignored and named", async () => {
    const { run } = setup();
    for (const [why, code] of [
      ["forged", "challenge.clearance_forged"],
      ["expired", "challenge.clearance_expired"],
      ["network", "challenge.clearance_rebound"],
      ["user_agent", "challenge.clearance_rebound"],
    ] as const) {
      const { verdict } = await run(browser({ clearance: { kind: "refused", why } }));
      expect(verdict).toMatchObject({ kind: "challenge", score: 40 });
      expect(verdict.reasons).toContainEqual({ code, points: 0, detail: why });
    }
  });

  it("clears sticky risk for its lifetime", async () => {
    const { run } = setup();
    await run(browser({ token: "alice" })); // challenged: sticky from now on
    const sticky = await run(browser({ token: "alice", path: "/api/x" }));
    expect(codes(sticky.verdict)).toContain("risk.sticky");
    const cleared = await run(
      browser({ token: "alice", path: "/api/x", clearance: valid("alice") }),
    );
    expect(codes(cleared.verdict)).not.toContain("risk.sticky");
    expect(cleared.verdict).toMatchObject({ kind: "allow", score: 0 });
  });

  it("keeps sticky risk when clears_sticky is off", async () => {
    const { run } = setup(
      POLICY.replace("clearance: { points: 30 }", "clearance: { points: 0, clears_sticky: false }"),
    );
    await run(browser({ token: "alice" }));
    const { verdict } = await run(
      browser({ token: "alice", path: "/api/x", clearance: valid("alice") }),
    );
    expect(codes(verdict)).toContain("risk.sticky");
  });

  it("never overrides a license denial or a block list", async () => {
    const { run } = setup();
    const admin = await run(browser({ token: "alice", path: "/admin", clearance: valid("alice") }));
    expect(admin.verdict).toMatchObject({ kind: "deny", cause: "license" });
    const blocked = await run(browser({ clientIp: DROP_IP, clearance: valid("anon:s1") }));
    expect(blocked.verdict).toMatchObject({ kind: "deny", cause: "risk" });
    expect(codes(blocked.verdict)).toContain("ip.blocklisted");
  });
});

describe("rendering an interactive challenge", () => {
  const decisions = parsePolicy(POLICY, "t.yaml").doc.decisions;
  const verdict = {
    kind: "challenge",
    style: "interactive",
    acrValues: "mfa",
    location: "/.riskgate/challenge?c=abc",
    requestId: "r1",
    score: 40,
    reasons: [],
  } as const;

  it("is a 302 to the challenge page in Envoy's denied_response", () => {
    const res = renderCheckResponse(verdict, accessRequest(), decisions);
    expect(res.denied_response?.status.code).toBe(302);
    expect(res.denied_response?.headers.map((h) => [h.header.key, h.header.value])).toContainEqual([
      "location",
      "/.riskgate/challenge?c=abc",
    ]);
  });

  it("is a 302 for forward-auth, and a 403 carrying the real status and location for nginx", () => {
    const forward = renderHttpAnswer("forward", verdict, accessRequest(), decisions);
    expect(forward.status).toBe(302);
    expect(forward.headers).toContainEqual(["location", "/.riskgate/challenge?c=abc"]);
    const nginx = renderHttpAnswer("nginx", verdict, accessRequest(), decisions);
    expect(nginx.status).toBe(403);
    expect(nginx.headers).toContainEqual(["x-riskgate-status", "302"]);
    expect(nginx.headers).toContainEqual(["location", "/.riskgate/challenge?c=abc"]);
  });

  it("falls back to the step-up when no page was issued (replay, explain)", () => {
    const { location: _l, ...bare } = verdict;
    const res = renderCheckResponse(bare, accessRequest(), decisions);
    expect(res.denied_response?.status.code).toBe(401);
  });
});
