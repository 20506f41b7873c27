import * as grpc from "@grpc/grpc-js";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { buildCheckRequest, describeResponse } from "../../src/cli/check.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import type { CheckRequestMessage } from "../../src/transport/check-request.js";
import { ServingStatus } from "../../src/transport/health.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const ISS = "https://riskgate.dev/demo";
const AUD = "demo-api";

function get(
  path: string,
  token?: string,
  extra: Partial<Parameters<typeof buildCheckRequest>[0]> = {},
) {
  return buildCheckRequest({
    method: "GET",
    path,
    host: "api.example.com",
    ip: "203.0.113.7",
    headers: {},
    ...(token === undefined ? {} : { token }),
    ...extra,
  });
}

function reasonCodes(body: string): string[] {
  return (JSON.parse(body) as { reasons: { code: string }[] }).reasons.map((r) => r.code);
}

describe("riskgate over gRPC: verdicts", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.stop());

  it("is SERVING once policy and keys are loaded", async () => {
    expect(await s.client.health()).toBe(ServingStatus.SERVING);
    expect(await s.client.health("envoy.service.auth.v3.Authorization")).toBe(
      ServingStatus.SERVING,
    );
    await expect(s.client.health("no.such.Service")).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it("allows with upstream headers and strips spoofed ones", async () => {
    const token = await s.token({ sub: "ann", tier: "pro", org: "acme", amr: ["mfa"] });
    const req = get("/v1/items?x=1", token);
    (req.attributes?.request?.http?.headers as Record<string, string>)["x-riskgate-admin"] = "yes";
    (req.attributes?.request?.http?.headers as Record<string, string>)["x-riskgate-tier"] =
      "enterprise";
    const res = await s.client.check(req);
    expect(res.status.code).toBe(grpc.status.OK);
    const view = describeResponse(res);
    expect(view.headers).toMatchObject({
      "x-riskgate-decision": "allow",
      "x-riskgate-score": "0",
      "x-riskgate-tier": "pro",
      "x-riskgate-subject": "ann",
    });
    expect(view.removed).toEqual(["x-riskgate-admin"]);
  });

  it("challenges a password-only token on a sensitive route (401, RFC 9470)", async () => {
    const token = await s.token({ sub: "eve", tier: "enterprise", amr: ["pwd"] });
    const res = await s.client.check(get("/admin/users", token));
    expect(res.status.code).toBe(grpc.status.UNAUTHENTICATED);
    const view = describeResponse(res);
    expect(view.httpStatus).toBe(401);
    expect(view.decision).toBe("challenge");
    expect(view.headers["www-authenticate"]).toMatch(
      /^Bearer error="insufficient_user_authentication".*acr_values="mfa", max_age=900$/,
    );
    const mfa = await s.token({ sub: "eve", tier: "enterprise", amr: ["pwd", "mfa"] });
    expect((await s.client.check(get("/admin/users", mfa))).status.code).toBe(grpc.status.OK);
  });

  it("denies a missing entitlement with 403 and a JSON reason", async () => {
    const token = await s.token({ sub: "fred", tier: "free", amr: ["mfa"] });
    const res = await s.client.check(get("/billing/invoices", token));
    expect(res.status.code).toBe(grpc.status.PERMISSION_DENIED);
    const view = describeResponse(res);
    expect(view.httpStatus).toBe(403);
    expect(JSON.parse(view.body)).toMatchObject({
      decision: "deny",
      reasons: [{ code: "license.entitlement_missing", points: 0 }],
    });
    expect(view.body).not.toContain(token);
  });

  it("denies an unknown tier distinctly", async () => {
    const token = await s.token({ sub: "gus", tier: "platinum", amr: ["mfa"] });
    const res = await s.client.check(get("/v1/items", token));
    expect(reasonCodes(describeResponse(res).body)).toEqual(["license.tier_unknown"]);
  });

  it("throttles with 429 and Retry-After after the tier's velocity limit", async () => {
    // a fixed clock: every request at one instant, so the window frees a full minute later
    const fixed = Math.ceil(Date.now() / 60_000) * 60_000 + 1_000;
    const s = await startTestServer({ clock: () => fixed });
    onTestFinished(() => s.stop());
    const token = await s.token({ sub: "velocity-user", tier: "free", amr: ["mfa"] });
    const codes: number[] = [];
    for (let i = 0; i < 21; i++)
      codes.push((await s.client.check(get("/v1/items", token))).status.code);
    expect(codes.slice(0, 20)).toEqual(new Array(20).fill(grpc.status.OK));
    expect(codes[20]).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const res = await s.client.check(get("/v1/items", token));
    const view = describeResponse(res);
    expect(view.httpStatus).toBe(429);
    expect(view.headers["retry-after"]).toBe("60");
    expect(reasonCodes(view.body)).toContain("velocity.subject");
  });

  it("verifies a cached token once", async () => {
    const token = await s.token({ sub: "cache-user", tier: "pro", amr: ["mfa"] });
    const before = s.app.current().identifier.stats();
    for (let i = 0; i < 5; i++) await s.client.check(get("/v1/items", token));
    const after = s.app.current().identifier.stats();
    expect(after.verifications - before.verifications).toBe(1);
    expect(after.cacheHits - before.cacheHits).toBe(4);
  });
});

describe("riskgate over gRPC: bad tokens", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.stop());

  async function reasonFor(token: string): Promise<string[]> {
    const res = await s.client.check(get("/v1/items", token));
    expect(res.status.code).toBe(grpc.status.UNAUTHENTICATED);
    const view = describeResponse(res);
    expect(view.httpStatus).toBe(401);
    expect(view.headers["www-authenticate"]).toContain('error="invalid_token"');
    return reasonCodes(view.body);
  }

  const payload = { sub: "mallory", tier: "enterprise", amr: ["mfa"] };
  const now = () => Math.floor(Date.now() / 1000);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

  it.each([
    ["not-a-jwt", "identity.malformed"],
    ["a.b.c", "identity.malformed"],
    ["\u0000\u0001\u0002.\u00ff.x", "identity.malformed"],
  ])("malformed %j", async (token, code) => {
    expect(await reasonFor(token)).toEqual([code]);
  });

  it("expired", async () => {
    const token = await s.token({ ...payload, nowMs: Date.now() - 3_600_000, ttlSeconds: 600 });
    expect(await reasonFor(token)).toEqual(["identity.expired"]);
  });

  it("not yet valid", async () => {
    const token = await s.token({ ...payload, nbf: now() + 3600 });
    expect(await reasonFor(token)).toEqual(["identity.not_yet_valid"]);
  });

  it("wrong issuer and wrong audience", async () => {
    expect(await reasonFor(await s.token({ ...payload, iss: "https://evil.example" }))).toEqual([
      "identity.issuer_mismatch",
    ]);
    expect(await reasonFor(await s.token({ ...payload, aud: "other-api" }))).toEqual([
      "identity.audience_mismatch",
    ]);
  });

  it("signed by another key under the trusted kid", async () => {
    const other = await generateKeyPair("ES256");
    const token = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "ES256", kid: s.devKeys.kid })
      .setIssuer(ISS)
      .setAudience(AUD)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(other.privateKey);
    expect(await reasonFor(token)).toEqual(["identity.bad_signature"]);
  });

  it("unknown kid", async () => {
    const other = await generateKeyPair("ES256");
    const token = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "ES256", kid: "someone-else" })
      .setIssuer(ISS)
      .setAudience(AUD)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(other.privateKey);
    expect(await reasonFor(token)).toEqual(["identity.unknown_key"]);
  });

  it("alg none", async () => {
    const token = `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...payload, iss: ISS, aud: AUD, exp: now() + 600 })}.`;
    expect(await reasonFor(token)).toEqual(["identity.algorithm_not_allowed"]);
  });

  it("HS256 signed with the public key as the secret", async () => {
    const { importJWK } = await import("jose");
    const jwk = s.devKeys.publicJwks.keys[0];
    const pub = await importJWK(jwk as Parameters<typeof importJWK>[0], "ES256");
    const pem = await exportSPKI(pub as Parameters<typeof exportSPKI>[0]);
    const token = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "HS256", kid: s.devKeys.kid })
      .setIssuer(ISS)
      .setAudience(AUD)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(pem));
    expect(await reasonFor(token)).toEqual(["identity.algorithm_not_allowed"]);
  });
});

describe("riskgate over gRPC: malformed requests", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.stop());

  it.each<[string, CheckRequestMessage, number, string]>([
    ["empty CheckRequest", {}, 403, "request.malformed"],
    ["attributes without request", { attributes: { source: {} } }, 403, "request.malformed"],
    [
      "http without headers",
      { attributes: { request: { http: { path: "/v1/items" } } } },
      401,
      "identity.missing",
    ],
    [
      "no source address",
      {
        attributes: {
          request: { http: { path: "/v1/x", headers: { authorization: "Bearer x.y.z" } } },
        },
      },
      401,
      "identity.malformed",
    ],
    [
      "binary junk in headers",
      {
        attributes: {
          request: {
            http: {
              path: "/v1/x",
              headers: { authorization: "\u0000\u00ff\ufffd junk", "x-\u0001": "\u0000" },
            },
          },
        },
      },
      401,
      "identity.malformed",
    ],
    [
      "64 KiB header values",
      {
        attributes: {
          request: {
            http: {
              path: "/v1/x",
              headers: {
                authorization: `Bearer ${"a".repeat(65_536)}`,
                "x-big": "b".repeat(65_536),
              },
            },
          },
        },
      },
      401,
      "identity.malformed",
    ],
  ])("%s", async (_name, msg, http, code) => {
    const res = await s.client.check(msg);
    const view = describeResponse(res);
    expect(res.status.code).not.toBe(grpc.status.OK);
    expect(view.httpStatus).toBe(http);
    expect(reasonCodes(view.body)).toEqual([code]);
  });

  it("survives bytes that are not protobuf, then keeps answering", async () => {
    const raw = new grpc.Client(`127.0.0.1:${s.port}`, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      raw.makeUnaryRequest(
        "/envoy.service.auth.v3.Authorization/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        (e) => resolve(e),
      );
    });
    raw.close();
    expect(err?.code).toBeDefined();
    expect(err?.code).not.toBe(grpc.status.OK);
    const ok = await s.client.check(get("/healthz"));
    expect(ok.status.code).toBe(grpc.status.OK);
  });
});

describe("riskgate over gRPC: errors and shutdown", () => {
  it("answers the safe outcome on an internal error and logs it once", async () => {
    const broken: Store = {
      kind: "memory",
      // a store answering nonsense makes the pipeline itself throw
      exec: () => Promise.resolve({ results: 42 } as never),
      close: () => Promise.resolve(),
    };
    const s = await startTestServer({ store: broken });
    try {
      const token = await s.token({ sub: "ivy", tier: "pro", amr: ["mfa"] });
      const res = await s.client.check(get("/v1/items", token));
      expect(res.status.code).toBe(grpc.status.UNAVAILABLE);
      expect(reasonCodes(describeResponse(res).body)).toEqual(["failure.internal"]);
      const errors = s.logs.filter((l) => l.msg === "internal error during Check");
      expect(errors).toHaveLength(1);
      expect(JSON.stringify(s.logs)).not.toContain(token);
    } finally {
      await s.stop();
    }
  });

  it("finishes in-flight checks on shutdown, then stops serving", async () => {
    const inner = createMemoryStore();
    let entered!: () => void;
    const started = new Promise<void>((r) => {
      entered = r;
    });
    // armed once serving: the warm-up's own store read before SERVING is no Check in flight
    let armed = false;
    const slow: Store = {
      kind: "memory",
      exec: async (batch) => {
        if (!armed) return inner.exec(batch);
        entered();
        await new Promise((r) => setTimeout(r, 60));
        return inner.exec(batch);
      },
      close: () => inner.close(),
    };
    const s = await startTestServer({ store: slow });
    armed = true;
    const token = await s.token({ sub: "slow", tier: "pro", amr: ["mfa"] });
    const inflight = s.client.check(get("/v1/items", token));
    await started;
    const stopping = s.app.shutdown(5000);
    expect(s.app.health.get()).toBe(ServingStatus.NOT_SERVING);
    const res = await inflight;
    expect(res.status.code).toBe(grpc.status.OK);
    await stopping;
    await expect(s.client.check(get("/healthz"))).rejects.toBeDefined();
    s.client.close();
  });
});
