import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { newApiKey } from "../../src/access/api-keys/new-key.js";
import { buildCheckRequest } from "../../src/cli/check.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.js";
import type { CheckRequestMessage } from "../../src/transport/check-request.js";
import type { CheckResponseMessage } from "../../src/transport/check-response.js";
import { httpCall } from "../helpers/http-call.js";
import { type Behaviour, startIntrospectionServer } from "../helpers/introspection-server.js";
import { fragments } from "../helpers/secret-fragments.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Identity sources beyond the JWT, over the real gRPC server (and the HTTP forward-auth
 * listener): each Check ends in the mapped tier's decision or the exact reason code, and the
 * audit line names the source.
 */

const INVOICER = "spiffe://cluster.local/ns/billing/sa/invoicer";
const PEERS = [
  { principal: "spiffe://cluster.local/ns/billing/sa/*", org: "billing", tier: "internal" },
  { principal: "spiffe://cluster.local/ns/web/sa/*", tier: "readonly" },
];

/** The demo policy with mesh peers, their tiers and a route in the mesh pattern. */
function policyText(keyFile?: string, introspection?: Record<string, unknown>): string {
  const doc = parse(readFileSync("policies/demo.yaml", "utf8")) as {
    identity: Record<string, unknown>;
    tiers: Record<string, unknown>;
    routes: unknown[];
    failure: Record<string, unknown>;
  };
  doc.identity.mtls = { peers: PEERS };
  if (keyFile !== undefined) doc.identity.api_keys = { file: keyFile };
  if (introspection !== undefined) {
    doc.identity.introspection = introspection;
    // room for a loaded machine's first connection; the slow endpoint still times out first
    doc.failure.budget_ms = 3000;
  }
  doc.tiers.internal = { entitlements: ["api.read", "api.write"] };
  doc.tiers.readonly = { entitlements: ["api.read"] };
  doc.routes.unshift({
    name: "mesh-orders",
    match: { path: { prefix: "/mesh/" } },
    peer: "with_token",
    entitlement: "api.read",
  });
  return stringify(doc);
}

function auditSink(lines: Record<string, unknown>[]): Telemetry {
  return createTelemetry(
    {
      tracing: { enabled: false, subjectAttribute: "off" },
      metrics: { enabled: false },
      audit: {
        enabled: true,
        allowSampleRate: 1,
        subject: "plain",
        destination: new Writable({
          write(chunk, _enc, done) {
            for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
            done();
          },
        }),
      },
      subjectHashKey: "test",
    },
    { logger: createLogger("silent") },
  );
}

function check(
  over: {
    principal?: string;
    token?: string;
    method?: string;
    path?: string;
    ip?: string;
    headers?: Record<string, string>;
  } = {},
): CheckRequestMessage {
  const req = buildCheckRequest({
    method: over.method ?? "GET",
    path: over.path ?? "/v1/items",
    host: "api.example.com",
    ip: over.ip ?? "10.1.2.3",
    headers: over.headers ?? {},
    ...(over.token === undefined ? {} : { token: over.token }),
  });
  if (over.principal !== undefined && req.attributes?.source) {
    req.attributes.source.principal = over.principal;
  }
  return req;
}

const codes = (res: CheckResponseMessage) =>
  (JSON.parse(res.denied_response?.body ?? "{}") as { reasons?: { code: string }[] }).reasons?.map(
    (r) => r.code,
  );

describe("mTLS peers over gRPC", () => {
  let s: TestServer;
  const audit: Record<string, unknown>[] = [];

  beforeAll(async () => {
    s = await startTestServer({
      policyText: policyText(),
      telemetry: auditSink(audit),
      settings: { httpClientCertHeader: "x-forwarded-client-cert" },
    });
  });
  afterAll(() => s.stop());

  it("a Check with only a mapped principal gets its tier's decision, audited as mtls", async () => {
    const before = audit.length;
    const res = await s.client.check(check({ principal: INVOICER }));
    expect(res.status.code).toBe(grpc.status.OK);
    const line = audit.slice(before).find((l) => l.decision === "allow");
    expect(line).toMatchObject({ identity_source: "mtls", subject: INVOICER, tier: "internal" });
    // the web namespace's tier reads but does not write
    const write = await s.client.check(
      check({ principal: "spiffe://cluster.local/ns/web/sa/frontend", method: "POST" }),
    );
    expect(write.status.code).not.toBe(grpc.status.OK);
    expect(codes(write)).toEqual(["license.entitlement_missing"]);
  });

  it("an unmapped principal is no credential", async () => {
    const res = await s.client.check(check({ principal: "spiffe://evil/ns/x/sa/y" }));
    expect(codes(res)).toEqual(["identity.missing"]);
  });

  it("the mesh pattern needs the peer and the user's token; the user is the caller", async () => {
    const token = await s.token({ sub: "alice", tier: "pro", amr: ["mfa"] });
    const path = "/mesh/orders";
    expect(codes(await s.client.check(check({ principal: INVOICER, path })))).toEqual([
      "identity.missing",
    ]);
    expect(codes(await s.client.check(check({ token, path })))).toEqual(["identity.peer_missing"]);
    expect(
      codes(await s.client.check(check({ token, path, principal: "spiffe://evil/sa/x" }))),
    ).toEqual(["identity.peer_unknown"]);
    const before = audit.length;
    const both = await s.client.check(check({ token, path, principal: INVOICER }));
    expect(both.status.code).toBe(grpc.status.OK);
    expect(audit.slice(before)[0]).toMatchObject({
      identity_source: "jwt",
      peer: INVOICER,
      subject: "alice",
    });
  });

  it("the forward-auth path reads the client certificate a trusted proxy forwards", async () => {
    const port = s.app.httpPort() as number;
    const forward = {
      "x-forwarded-method": "GET",
      "x-forwarded-host": "api.example.com",
      "x-forwarded-uri": "/v1/items",
    };
    const xfcc = `By=spiffe://cluster.local/ns/edge/sa/gw;Hash=abc;URI=${INVOICER}`;
    const ok = await httpCall(port, "/auth/forward", {
      ...forward,
      "x-forwarded-client-cert": xfcc,
    });
    expect(ok.status).toBe(200);
    const none = await httpCall(port, "/auth/forward", forward);
    expect(none.status).toBe(401);
  });
});

describe("API keys over gRPC", () => {
  let s: TestServer;
  const audit: Record<string, unknown>[] = [];
  const valid = newApiKey({ subject: "acme-sync", org: "acme", tier: "free" });
  const revoked = newApiKey({ subject: "old-sync", tier: "pro" });
  const expired = newApiKey({ subject: "trial", tier: "pro", expires: "2020-01-01T00:00:00Z" });
  const office = newApiKey({ subject: "office", tier: "pro", networks: ["192.0.2.0/24"] });
  const unknown = newApiKey({ subject: "nobody", tier: "pro" });

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "rg-keys-"));
    const file = join(dir, "api-keys.jsonl");
    const revokedLine = JSON.stringify({ ...JSON.parse(revoked.line), revoked: true });
    writeFileSync(file, [valid.line, revokedLine, expired.line, office.line, ""].join("\n"));
    s = await startTestServer({ policyText: policyText(file), telemetry: auditSink(audit) });
  });
  afterAll(() => s.stop());

  const withKey = (key: string, ip?: string, method = "GET") =>
    check({ headers: { "x-api-key": key }, method, ...(ip === undefined ? {} : { ip }) });

  it("a valid key gets its tier's decision, audited as api_key", async () => {
    const before = audit.length;
    const res = await s.client.check(withKey(valid.key));
    expect(res.status.code).toBe(grpc.status.OK);
    expect(audit.slice(before)[0]).toMatchObject({
      identity_source: "api_key",
      subject: "acme-sync",
      tier: "free",
    });
    // free reads but does not write
    expect(codes(await s.client.check(withKey(valid.key, undefined, "POST")))).toEqual([
      "license.entitlement_missing",
    ]);
    expect((await s.client.check(withKey(office.key, "192.0.2.10"))).status.code).toBe(
      grpc.status.OK,
    );
  });

  const refusals: [string, () => string, string, string?][] = [
    ["unknown", () => unknown.key, "identity.unknown_key"],
    ["revoked", () => revoked.key, "identity.revoked_key"],
    ["expired", () => expired.key, "identity.expired_key"],
    [
      "from a network the key may not use",
      () => office.key,
      "identity.key_network",
      "198.51.100.9",
    ],
  ];
  for (const [name, key, reason, ip] of refusals) {
    it(`a ${name} key -> ${reason}, and the key is in no response or log line`, async () => {
      const logsBefore = s.logs.length;
      const auditBefore = audit.length;
      const res = await s.client.check(withKey(key(), ip));
      expect(res.status.code).not.toBe(grpc.status.OK);
      expect(codes(res)).toEqual([reason]);
      expect(audit.slice(auditBefore)[0]).toMatchObject({ identity_source: "api_key" });
      const seen = JSON.stringify([res, s.logs.slice(logsBefore), audit.slice(auditBefore)]);
      // the key's secret part (after its public label), and any 12 characters of it
      for (const piece of fragments(key().slice(9))) expect(seen).not.toContain(piece);
    });
  }
});

describe("opaque tokens over gRPC", () => {
  let s: TestServer;
  let endpoint: Awaited<ReturnType<typeof startIntrospectionServer>>;
  const audit: Record<string, unknown>[] = [];
  const nowSec = () => Math.floor(Date.now() / 1000);
  const behave = (token: string): Behaviour => {
    if (token.startsWith("active")) {
      return { json: { active: true, sub: "integration-7", tier: "pro", exp: nowSec() + 600 } };
    }
    if (token.startsWith("slow")) return "hang";
    if (token.startsWith("down")) return { status: 503 };
    return { json: { active: false } };
  };

  beforeAll(async () => {
    endpoint = await startIntrospectionServer(behave);
    const dir = mkdtempSync(join(tmpdir(), "rg-introspect-"));
    const secret = join(dir, "client-secret");
    writeFileSync(secret, "s3cret\n");
    const text = policyText(undefined, {
      endpoint: endpoint.url,
      client_id: "riskgate",
      client_secret_file: secret,
      timeout_ms: 2000,
    });
    s = await startTestServer({ policyText: text, telemetry: auditSink(audit) });
  });
  afterAll(async () => {
    await s.stop();
    await endpoint.close();
  });

  it("an active opaque token gets its tier's decision, audited as introspection", async () => {
    const before = audit.length;
    const res = await s.client.check(check({ token: "active-token-0001" }));
    expect(res.status.code).toBe(grpc.status.OK);
    expect(audit.slice(before)[0]).toMatchObject({
      identity_source: "introspection",
      subject: "integration-7",
    });
  });

  it("an inactive token -> identity.inactive_token; the token is in no response or log line", async () => {
    const logsBefore = s.logs.length;
    const res = await s.client.check(check({ token: "inactive-token-secret-0002" }));
    expect(codes(res)).toEqual(["identity.inactive_token"]);
    const seen = JSON.stringify([res, s.logs.slice(logsBefore), audit]);
    for (const piece of fragments("inactive-token-secret-0002")) {
      expect(seen).not.toContain(piece);
    }
  });

  it("an endpoint down or slow -> identity.introspection_unavailable, the route's failure mode (closed) denies", async () => {
    for (const token of ["down-token-0003", "slow-token-0004"]) {
      const res = await s.client.check(check({ token }));
      expect(res.status.code).not.toBe(grpc.status.OK);
      expect(codes(res)).toEqual(["identity.introspection_unavailable"]);
    }
  });
});
