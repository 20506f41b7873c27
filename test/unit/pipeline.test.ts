import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Identifier } from "../../src/access/identity.js";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest } from "../../src/access/request.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { accessRequest } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const demo = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");

const claims = {
  freeUser: { sub: "u-free", tier: "free", org: "acme", amr: ["pwd"] },
  proMfa: { sub: "u-pro", tier: "pro", org: "acme", amr: ["pwd", "mfa"] },
  entPwd: {
    sub: "u-ent",
    tier: "enterprise",
    org: "big",
    amr: ["pwd"],
    auth_time: NOW / 1000 - 60,
  },
  entMfa: {
    sub: "u-ent2",
    tier: "enterprise",
    org: "big",
    amr: ["mfa"],
    auth_time: NOW / 1000 - 60,
  },
  entStale: { sub: "u-ent3", tier: "enterprise", amr: ["mfa"], auth_time: NOW / 1000 - 3600 },
  gold: { sub: "u-gold", tier: "gold" },
  noTier: { sub: "u-none" },
  addOn: { sub: "u-addon", tier: "free", amr: ["mfa"], entitlements: ["api.write"] },
};

function request(over: Partial<AccessRequest> & { token?: string } = {}): AccessRequest {
  const headers = new Map<string, string>();
  if (over.token !== undefined) headers.set("authorization", `Bearer ${over.token}`);
  return accessRequest({ headers, ...over });
}

function setup(options: { store?: Store; policyText?: string } = {}) {
  const policy = options.policyText ? parsePolicy(options.policyText, "t.yaml") : demo;
  const runtime = policySnapshotOf(policy, fakeIdentifier(claims));
  const pipeline = createPipeline({
    store: options.store ?? createMemoryStore(),
    clock: () => NOW,
  });
  return { evaluate: (req: AccessRequest) => pipeline.evaluate(runtime, req) };
}

const codes = (v: { reasons: readonly { code: string }[] }) => v.reasons.map((r) => r.code);

describe("access pipeline on the demo policy", () => {
  it("allows a licensed caller with reasons and license context", async () => {
    const { verdict } = await setup().evaluate(request({ token: "proMfa" }));
    expect(verdict).toMatchObject({
      kind: "allow",
      score: 0,
      subject: "u-pro",
      org: "acme",
      tier: "pro",
      route: "api-read",
      entitlement: "api.read",
    });
  });

  it("denies an unauthenticated caller on a protected route (401 cause)", async () => {
    const { verdict } = await setup().evaluate(request());
    expect(verdict).toMatchObject({ kind: "deny", cause: "authentication" });
    expect(codes(verdict)).toEqual(["identity.missing"]);
  });

  it("passes the identity failure's reason through", async () => {
    const { verdict } = await setup().evaluate(request({ token: "forged" }));
    expect(verdict).toMatchObject({ kind: "deny", cause: "authentication" });
    expect(codes(verdict)).toEqual(["identity.bad_signature"]);
  });

  it("lets public routes through without identity", async () => {
    const { verdict } = await setup().evaluate(request({ path: "/healthz" }));
    expect(verdict).toMatchObject({ kind: "allow", route: "health" });
  });

  it("denies unmatched routes by default", async () => {
    const { verdict } = await setup().evaluate(request({ token: "proMfa", path: "/internal" }));
    expect(codes(verdict)).toEqual(["license.route_unmatched"]);
    expect(verdict).toMatchObject({ kind: "deny", cause: "license" });
  });

  it("distinguishes unknown tier, missing tier and missing entitlement", async () => {
    const p = setup();
    expect(codes((await p.evaluate(request({ token: "gold" }))).verdict)).toEqual([
      "license.tier_unknown",
    ]);
    expect(codes((await p.evaluate(request({ token: "noTier" }))).verdict)).toEqual([
      "license.tier_unknown",
    ]);
    const write = await p.evaluate(request({ token: "freeUser", method: "POST" }));
    expect(write.verdict).toMatchObject({
      kind: "deny",
      cause: "license",
      entitlement: "api.write",
    });
    expect(codes(write.verdict)).toEqual(["license.entitlement_missing"]);
    // entitlements in the token add to the tier's
    const addOn = await p.evaluate(request({ token: "addOn", method: "POST" }));
    expect(addOn.verdict.kind).toBe("allow");
  });

  it("challenges a password-only session on a high-sensitivity route (RFC 9470)", async () => {
    const { verdict } = await setup().evaluate(
      request({ token: "entPwd", path: "/admin/users/7" }),
    );
    expect(verdict).toMatchObject({
      kind: "challenge",
      style: "step_up",
      acrValues: "mfa",
      maxAge: 900,
      score: 55,
    });
    expect(verdict.reasons).toEqual([
      { code: "auth.weak", points: 40, detail: "amr=pwd" },
      { code: "request.sensitivity", points: 15, detail: "high" },
    ]);
  });

  it("allows the same route after step-up, and challenges again when auth_time is stale", async () => {
    const p = setup();
    expect(
      (await p.evaluate(request({ token: "entMfa", path: "/admin/users" }))).verdict.kind,
    ).toBe("allow");
    const stale = await p.evaluate(request({ token: "entStale", path: "/admin/users" }));
    // 10 + 15 = 25 is under the enterprise high-sensitivity challenge_at of 40, but the
    // route's step_up.max_age_seconds (900) is RFC 9470's max_age: a login an hour old is
    // challenged whatever the score
    expect(codes(stale.verdict)).toEqual(["auth.stale", "request.sensitivity", "auth.max_age"]);
    expect(stale.verdict).toMatchObject({ kind: "challenge", maxAge: 900, acrValues: "mfa" });
  });

  it("throttles past the tier's velocity limit with Retry-After from the window", async () => {
    const p = setup();
    const kinds: string[] = [];
    const scores: number[] = [];
    let last: Awaited<ReturnType<typeof p.evaluate>> | undefined;
    for (let i = 0; i < 21; i++) {
      last = await p.evaluate(request({ token: "freeUser" }));
      kinds.push(last.verdict.kind);
      scores.push(last.verdict.score);
    }
    expect(kinds.slice(0, 20).every((k) => k === "allow")).toBe(true);
    expect(last?.verdict).toMatchObject({ kind: "throttle", retryAfterSeconds: 60 });
    expect(codes(last?.verdict ?? { reasons: [] })).toContain("velocity.subject");
    // weak auth alone scores 10; from 16 of 20 (near_limit_ratio 0.8) velocity adds 15
    expect(scores[14]).toBe(10);
    expect(scores[15]).toBe(25);
  });

  it("applies the failure mode when the store fails", async () => {
    const broken: Store = {
      kind: "memory",
      exec: () => Promise.reject(new Error("connection refused")),
      close: () => Promise.resolve(),
    };
    const closed = await setup({ store: broken }).evaluate(request({ token: "proMfa" }));
    expect(closed.verdict).toMatchObject({ kind: "deny", cause: "failure" });
    expect(codes(closed.verdict)).toEqual(["failure.store"]);

    const text = readFileSync("policies/demo.yaml", "utf8").replace(
      "mode: closed",
      "mode: safe_methods_only",
    );
    const safe = setup({ store: broken, policyText: text });
    const get = await safe.evaluate(request({ token: "proMfa" }));
    expect(get.verdict.kind).toBe("allow");
    expect(codes(get.verdict)).toContain("failure.store");
    const post = await safe.evaluate(request({ token: "proMfa", method: "POST" }));
    expect(post.verdict).toMatchObject({ kind: "deny", cause: "failure" });
  });

  it("answers the failure mode when the budget runs out", async () => {
    const hanging: Store = {
      kind: "memory",
      exec: () => new Promise(() => {}),
      close: () => Promise.resolve(),
    };
    const text = readFileSync("policies/demo.yaml", "utf8").replace(
      "budget_ms: 100",
      "budget_ms: 5",
    );
    const { verdict } = await setup({ store: hanging, policyText: text }).evaluate(
      request({ token: "proMfa" }),
    );
    expect(verdict).toMatchObject({ kind: "deny", cause: "failure" });
    expect(codes(verdict)).toEqual(["failure.budget"]);
  });

  it("never lets the budget decide identity: a caller still being verified is refused, even on open", async () => {
    const text = readFileSync("policies/demo.yaml", "utf8")
      .replace("budget_ms: 100", "budget_ms: 5")
      .replace("mode: closed", "mode: open");
    const waiting: Identifier = {
      ...fakeIdentifier(claims),
      identify: () => new Promise(() => {}), // the keys never arrive
    };
    const runtime = policySnapshotOf(parsePolicy(text, "t.yaml"), waiting);
    const pipeline = createPipeline({ store: createMemoryStore(), clock: () => NOW });
    for (const method of ["GET", "POST"]) {
      const { verdict } = await pipeline.evaluate(runtime, request({ token: "proMfa", method }));
      expect(verdict).toMatchObject({ kind: "deny", cause: "authentication" });
      expect(codes(verdict)).toEqual(["identity.keys_unavailable"]);
    }
  });

  it("shadow mode allows but keeps what it would have done", async () => {
    const text = readFileSync("policies/demo.yaml", "utf8").replace(
      "mode: enforce",
      "mode: shadow",
    );
    const decision = await setup({ policyText: text }).evaluate(
      request({ token: "freeUser", method: "DELETE" }),
    );
    expect(decision.mode).toBe("shadow");
    expect(decision.verdict).toMatchObject({ kind: "allow", shadowOf: "deny" });
    expect(decision.enforced).toMatchObject({ kind: "deny", cause: "license" });
  });

  it("lets a named route win over path matching (context_extensions)", async () => {
    const { verdict } = await setup().evaluate(
      request({
        token: "proMfa",
        path: "/anything",
        contextExtensions: { riskgate_route: "billing" },
      }),
    );
    expect(verdict).toMatchObject({ kind: "deny", route: "billing" });
    expect(codes(verdict)).toEqual(["license.entitlement_missing"]);
  });
});
