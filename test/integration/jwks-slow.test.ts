import { generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCheckRequest, describeResponse } from "../../src/cli/check.js";
import { type JwksServer, startJwksServer, testKey } from "../helpers/jwt.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Tokens signed by an attacker's own key, with a kid the issuer never published, while the
 * issuer's JWKS endpoint is slow: each such token makes riskgate refetch the keys, and the
 * refetch outlasts the decision's 100 ms budget. The budget must never let such a token through,
 * whatever the route's failure mode: failure modes stand in for the store and the webhook, not
 * for identity. The JWKS server holds its answers until the test releases them, so the budget
 * always runs out first, however busy the machine.
 */
const ISS = "https://riskgate.dev/demo";
const AUD = "demo-api";
const CONCURRENT = 50;

let jwks: JwksServer;
let server: TestServer;
let forge: () => Promise<string>;

beforeAll(async () => {
  const issuerKey = await testKey("issuer-1");
  jwks = await startJwksServer([issuerKey.jwk]);
  // cooldown 0: every unknown kid may refetch, as it may once any cooldown has passed
  const policyText = `
version: 1
identity:
  issuers: ["${ISS}"]
  audiences: ["${AUD}"]
  jwks: { uri: "${jwks.uri}", cooldown_seconds: 0, timeout_ms: 600000 }
tiers:
  pro: { entitlements: [api.read] }
routes:
  - { name: open, match: { path: { prefix: /open } }, entitlement: api.read, failure: open }
  - name: safe
    match: { path: { prefix: /safe } }
    entitlement: api.read
    failure: safe_methods_only
  - { name: closed, match: { path: { prefix: /closed } }, entitlement: api.read, failure: closed }
failure: { mode: open, budget_ms: 100 }
`;
  server = await startTestServer({ policyText });
  const attacker = await generateKeyPair("ES256");
  forge = () => {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: ISS, aud: AUD, sub: "mallory", tier: "pro", iat, exp: iat + 600 })
      .setProtectedHeader({ alg: "ES256", kid: `attacker-${Math.random()}` })
      .sign(attacker.privateKey);
  };
});

afterAll(async () => {
  await server?.stop();
  await jwks?.close();
});

/** What riskgate answered a forged token on `path`: "allow", or the deny's reason codes. */
async function forgedCheck(path: string): Promise<string> {
  const res = await server.client.check(
    buildCheckRequest({
      method: "GET",
      path,
      host: "api.test",
      ip: "203.0.113.7",
      headers: {},
      token: await forge(),
    }),
  );
  const seen = describeResponse(res);
  return seen.decision === "allow" ? "allow" : res.status.message;
}

describe("forged tokens while the issuer's JWKS is slow", () => {
  it("none passes on open, safe_methods_only or closed routes: all identity.keys_unavailable", async () => {
    expect(jwks.hits()).toBe(1); // the keys loaded before the server turned SERVING
    jwks.hang();
    const answers = await Promise.all(
      ["/open/x", "/safe/x", "/closed/x"].flatMap((path) =>
        Array.from({ length: CONCURRENT }, () => forgedCheck(path)),
      ),
    );
    expect(answers.filter((a) => a === "allow")).toHaveLength(0);
    expect(new Set(answers)).toEqual(new Set(["identity.keys_unavailable"]));
    // all of them waited on one shared refetch
    expect(jwks.hits()).toBe(2);

    // once the issuer answers, the forged kid is unknown, still never allowed
    jwks.release();
    const after = await Promise.all(["/open/y", "/safe/y", "/closed/y"].map(forgedCheck));
    expect(new Set(after)).toEqual(new Set(["identity.unknown_key"]));
  });
});
