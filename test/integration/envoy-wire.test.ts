import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { createDevKeySource } from "../../src/cli/dev-keys.js";
import { replay } from "../../src/replay/replay.js";
import { type EnvoyWire, envoyWire, outcomeOf } from "../helpers/envoy-wire.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * What Envoy puts in a CheckRequest besides the HTTP request, sent as Envoy sends it: bytes
 * encoded from the official Envoy protos, decoded by the live server over real gRPC. Envoy's
 * jwt_authn payload and another filter's fraud score arrive as google.protobuf.Struct dynamic
 * metadata, the route name as a context extension.
 */
const T0 = Date.UTC(2026, 10, 21, 8, 0, 0);
const POLICY = `
version: 1
identity:
  issuers: ["https://riskgate.dev/demo"]
  audiences: ["demo-api"]
  sources:
    jwt_authn: { enabled: true }
tiers:
  pro:
    entitlements: [api.read]
    risk: { challenge_at: 40, deny_at: 80 }
routes:
  - { name: admin, match: { path: { prefix: /admin } }, entitlement: api.admin }
  - { name: api, match: { path: { prefix: /v1/ } }, entitlement: api.read }
signals:
  external_scores:
    enabled: true
    sources:
      - name: envoy_fraud
        metadata: { namespace: com.example.fraud, path: score }
        number: { min: 0, max: 1, bands: [{ min: 0.8, max: 1, points: 40, reason: fraud }] }
failure: { mode: closed, budget_ms: 5000 }
`;

let server: TestServer;
let wire: EnvoyWire;
beforeEach(async () => {
  server = await startTestServer({ policyText: POLICY, clock: () => T0 });
  wire = envoyWire(`127.0.0.1:${server.port}`);
});
afterEach(async () => {
  wire.close();
  await server.stop();
});

/** A CheckRequest in proto3 JSON from Envoy with jwt_authn's verified payload for `sub`. */
function checkJson(
  over: { sub?: string; path?: string; fraud?: number; route?: string; at?: number } = {},
): Record<string, unknown> {
  const iat = Math.floor(T0 / 1000);
  const path = over.path ?? "/v1/items";
  const filterMetadata: Record<string, unknown> = {
    "envoy.filters.http.jwt_authn": {
      jwt_payload: {
        iss: "https://riskgate.dev/demo",
        aud: ["demo-api"],
        sub: over.sub ?? "alice",
        tier: "pro",
        amr: ["pwd", "mfa"],
        iat,
        exp: iat + 600,
        nested: { list: [1, "two", true, null] },
      },
    },
  };
  if (over.fraud !== undefined) {
    filterMetadata["com.example.fraud"] = { score: over.fraud, model: "v3" };
  }
  return {
    attributes: {
      source: { address: { socket_address: { address: "198.51.100.23", port_value: 40000 } } },
      request: {
        time: new Date(over.at ?? T0).toISOString(),
        http: {
          id: `req-${over.sub ?? "alice"}-${path}-${over.fraud ?? "none"}-${over.route ?? ""}`,
          method: "GET",
          path,
          host: "api.example.com",
          headers: {
            ":method": "GET",
            ":path": path,
            ":authority": "api.example.com",
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
          },
        },
      },
      ...(over.route === undefined ? {} : { context_extensions: { riskgate_route: over.route } }),
      metadata_context: { filter_metadata: filterMetadata },
    },
  };
}

const live = async (json: Record<string, unknown>) =>
  outcomeOf(await wire.check(wire.encode(json)));

describe("Envoy's dynamic metadata and context extensions, decoded from the wire", () => {
  it("identifies the caller from the jwt_authn payload Envoy verified", async () => {
    const { decision, headers } = await live(checkJson({ sub: "alice" }));
    expect(decision).toBe("allow");
    expect(headers.get("x-riskgate-subject")).toBe("alice");
    expect(headers.get("x-riskgate-tier")).toBe("pro");
  });

  it("scores a fraud score another filter put into the metadata", async () => {
    expect((await live(checkJson({ sub: "bob", fraud: 0.1 }))).decision).toBe("allow");
    // 0.9 is in the 0.8-1 band: 40 points, the tier's challenge_at
    const risky = await live(checkJson({ sub: "bob", fraud: 0.9 }));
    expect(risky).toMatchObject({ decision: "challenge", reasons: "external.fraud" });
  });

  it("lets a context extension name the route", async () => {
    const named = await live(checkJson({ sub: "carol", route: "admin" }));
    expect(named).toMatchObject({ decision: "deny", reasons: "license.entitlement_missing" });
  });

  it("decides each request as `riskgate replay` decides the same request", async () => {
    const lines = [
      checkJson({ sub: "dave", at: T0 }),
      checkJson({ sub: "dave", fraud: 0.95, at: T0 + 1000 }),
      checkJson({ sub: "erin", route: "admin", at: T0 + 2000 }),
      checkJson({ sub: "frank", fraud: 0.2, at: T0 + 3000 }),
    ];
    const liveDecisions: string[] = [];
    for (const json of lines) liveDecisions.push((await live(json)).decision);
    const replayed: string[] = [];
    async function* input() {
      for (const json of lines) yield JSON.stringify(json);
    }
    const policy = parsePolicy(POLICY, "wire.yaml");
    for await (const r of replay(
      { policy, keys: createDevKeySource(server.devKeys.publicJwks) },
      input(),
    )) {
      replayed.push(r.decision);
    }
    expect(liveDecisions).toEqual(["allow", "challenge", "deny", "allow"]);
    expect(replayed).toEqual(liveDecisions);
  });
});
