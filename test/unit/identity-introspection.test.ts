import { afterEach, describe, expect, it } from "vitest";
import { createIdentifier } from "../../src/access/identity.js";
import { accessRequest as baseRequest } from "../helpers/access-request.js";
import { type Behaviour, startIntrospectionServer } from "../helpers/introspection-server.js";
import { identityPolicy, NOW, NOW_SEC } from "../helpers/jwt.js";

const ACTIVE = { active: true, sub: "svc-1", tier: "pro", exp: NOW_SEC + 600, scope: "a b" };

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function setup(behave: (token: string) => Behaviour, extra: Record<string, unknown> = {}) {
  const server = await startIntrospectionServer(behave);
  close = server.close;
  let now = NOW;
  const id = createIdentifier(
    { keys: undefined, introspection: { clientSecret: "s3cret", now: () => now } },
    identityPolicy({
      introspection: {
        endpoint: server.url,
        client_id: "riskgate",
        client_secret_file: "unused",
        // generous: a loaded machine's first connection is slow; the slow case sets its own
        timeout_ms: 5000,
        ...extra,
      },
      claims: { entitlements: "scope" },
    }),
  );
  return { id, server, advance: (ms: number) => (now += ms) };
}

const bearer = (token: string) =>
  baseRequest({ headers: new Map([["authorization", `Bearer ${token}`]]) });

describe("opaque tokens (RFC 7662 introspection)", () => {
  it("an active token's claims go through the claim paths; answers are cached by token", async () => {
    const { id, server } = await setup(() => ({ json: ACTIVE }));
    const first = await id.identify(bearer("opaque-1"), NOW);
    expect(first).toMatchObject({
      kind: "verified",
      source: "introspection",
      cached: false,
      caller: { subject: "svc-1", tier: "pro", entitlements: ["a", "b"] },
    });
    expect(await id.identify(bearer("opaque-1"), NOW + 1000)).toMatchObject({ cached: true });
    expect(server.calls()).toBe(1);
    // the cache ends at the policy's maximum (60 s) or the token's exp, whichever is first
    await id.identify(bearer("opaque-1"), NOW + 61_000);
    expect(server.calls()).toBe(2);
  });

  it("refuses active: false, and a JWT-shaped bearer stays the JWT source's", async () => {
    const { id, server } = await setup(() => ({ json: { active: false } }));
    expect(await id.identify(bearer("revoked-1"), NOW)).toMatchObject({
      kind: "invalid",
      reason: "identity.inactive_token",
      method: "introspection",
    });
    expect(await id.identify(bearer("a.b.c"), NOW)).not.toMatchObject({
      method: "introspection",
    });
    expect(server.calls()).toBe(1);
  });

  const broken: [string, Behaviour][] = [
    ["slow", "hang"],
    ["erroring", { status: 500 }],
    ["answering garbage", { garbage: "<html>oops" }],
    ["answering a JSON list", { garbage: "[1,2]" }],
  ];
  for (const [name, behaviour] of broken) {
    it(`an endpoint ${name} is identity.introspection_unavailable`, async () => {
      const { id } = await setup(() => behaviour, behaviour === "hang" ? { timeout_ms: 50 } : {});
      const out = await id.identify(bearer("opaque-2"), NOW);
      expect(out).toMatchObject({ kind: "invalid", reason: "identity.introspection_unavailable" });
      expect(JSON.stringify(out)).not.toContain("opaque-2");
    });
  }

  it("an endpoint that is down opens the breaker: later calls are refused without a try", async () => {
    const { id, server } = await setup(() => ({ status: 503 }), {
      breaker: { failures: 2, open_seconds: 30 },
    });
    for (const t of ["t1", "t2", "t3", "t4"]) {
      expect(await id.identify(bearer(t), NOW)).toMatchObject({
        reason: "identity.introspection_unavailable",
      });
    }
    expect(server.calls()).toBe(2);
  });

  it("authenticates as its client: a wrong secret is a failure, not an active token", async () => {
    const server = await startIntrospectionServer(() => ({ json: ACTIVE }));
    close = server.close;
    const id = createIdentifier(
      { keys: undefined, introspection: { clientSecret: "wrong" } },
      identityPolicy({
        introspection: {
          endpoint: server.url,
          client_id: "riskgate",
          client_secret_file: "x",
          timeout_ms: 5000,
        },
      }),
    );
    expect(await id.identify(bearer("opaque-3"), NOW)).toMatchObject({
      reason: "identity.introspection_unavailable",
    });
  });
});

describe("the introspection policy", () => {
  it("refuses a call budget that is not below the decision's budget", async () => {
    const { parsePolicy } = await import("../../src/access/policy.js");
    const text = (timeout: number) => `version: 1
identity:
  issuers: [i]
  audiences: [a]
  introspection: { endpoint: "https://idp.test/introspect", client_id: rg, client_secret_file: s, timeout_ms: ${timeout} }
tiers: { free: {} }
failure: { budget_ms: 100 }
`;
    expect(() => parsePolicy(text(100), "p.yaml")).toThrow(/identity\.introspection\.timeout_ms/);
    expect(parsePolicy(text(60), "p.yaml").doc.identity.introspection?.cache_max_seconds).toBe(60);
  });
});
