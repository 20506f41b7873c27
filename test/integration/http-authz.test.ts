import { connect } from "node:net";
import { Writable } from "node:stream";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { createIpList } from "../../src/geo/ip-list.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.js";
import { ServingStatus } from "../../src/transport/health.js";
import { startHttpAuthz } from "../../src/transport/http-authz.js";
import { httpCall } from "../helpers/http-call.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Raw bytes to the listener; resolves with whatever it answers before closing. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(bytes));
    let out = "";
    socket.on("data", (c) => {
      out += c.toString();
    });
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
  });
}

const forward = (uri: string, extra: Record<string, string> = {}) => ({
  "x-forwarded-method": "GET",
  "x-forwarded-host": "api.example.com",
  "x-forwarded-uri": uri,
  ...extra,
});

describe("HTTP forward-auth listener", () => {
  let s: TestServer;
  let port: number;
  let telemetry: Telemetry;
  const spans = new InMemorySpanExporter();
  const audit: string[] = [];

  beforeAll(async () => {
    telemetry = createTelemetry(
      {
        tracing: { enabled: true, exporter: spans, subjectAttribute: "hash" },
        metrics: { enabled: false },
        audit: {
          enabled: true,
          allowSampleRate: 1,
          subject: "hash",
          destination: new Writable({
            write(chunk, _enc, done) {
              audit.push(String(chunk));
              done();
            },
          }),
        },
        subjectHashKey: "http",
      },
      { logger: createLogger("silent") },
    );
    await telemetry.start();
    s = await startTestServer({ telemetry });
    port = s.app.httpPort() as number;
  });
  afterAll(async () => {
    await s.stop();
    await telemetry.shutdown();
  });

  it("serves /healthz, and /readyz follows the serving state (drain)", async () => {
    expect((await httpCall(port, "/healthz")).status).toBe(200);
    expect((await httpCall(port, "/readyz")).status).toBe(200);
    s.app.health.set(ServingStatus.NOT_SERVING);
    try {
      expect((await httpCall(port, "/readyz")).status).toBe(503);
      expect((await httpCall(port, "/healthz")).status).toBe(200);
    } finally {
      s.app.health.set(ServingStatus.SERVING);
    }
  });

  it("decides Envoy's HTTP ext_authz: original method, path after the prefix, removals", async () => {
    const token = await s.token({ sub: "ann", tier: "pro", amr: ["mfa"] });
    const r = await httpCall(
      port,
      "/auth/envoy/v1/items?x=1",
      { authorization: `Bearer ${token}`, host: "api.example.com", "x-riskgate-admin": "yes" },
      "POST",
    );
    expect(r.status).toBe(200);
    expect(r.headers).toMatchObject({
      "x-riskgate-decision": "allow",
      "x-riskgate-tier": "pro",
      "x-envoy-auth-headers-to-remove": "x-riskgate-admin",
    });
    const get = await httpCall(port, "/auth/envoy/billing", { authorization: `Bearer ${token}` });
    expect(get.status).toBe(403);
  });

  it("answers bad input with a 400, a deny and a reason code", async () => {
    const unknown = await httpCall(port, "/auth");
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.body)).toMatchObject({
      decision: "deny",
      reasons: [{ code: "request.unknown_dialect" }],
    });
    const missing = await httpCall(port, "/auth/forward", { "x-forwarded-method": "GET" });
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body)).toMatchObject({
      reasons: [{ code: "request.malformed" }],
      error: "x-forwarded-uri is missing",
    });
    const both = await httpCall(port, "/auth", { ...forward("/v1"), "x-original-uri": "/v1" });
    expect(both.status).toBe(400);
    const body = await httpCall(port, "/auth/forward", {
      ...forward("/v1"),
      "content-length": "999999999",
    });
    expect(body.status).toBe(400);
  });

  it("never crashes on oversized or broken requests", async () => {
    const big = await raw(
      port,
      `GET /auth/forward HTTP/1.1\r\nhost: a\r\nx-big: ${"a".repeat(40_000)}\r\n\r\n`,
    );
    expect(big).toMatch(/^HTTP\/1\.1 431/);
    expect(await raw(port, "\x16\x03\x01garbage\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect((await httpCall(port, "/healthz")).status).toBe(200);
  });

  it("emits the same decision telemetry as gRPC, with transport http and the proxy's trace", async () => {
    const token = await s.token({ sub: "tim", tier: "pro", amr: ["mfa"] });
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const r = await httpCall(port, "/auth/forward", {
      ...forward("/v1/items", { "x-request-id": "http-trace-1" }),
      authorization: `Bearer ${token}`,
      traceparent: `00-${trace}-00f067aa0ba902b7-01`,
    });
    expect(r.status).toBe(200);
    await telemetry.flush();
    const span = spans
      .getFinishedSpans()
      .find((x) => x.attributes["riskgate.request_id"] === "http-trace-1");
    expect(span?.spanContext().traceId).toBe(trace);
    expect(span?.attributes["riskgate.transport"]).toBe("http");
    expect(span?.attributes["rpc.system.name"]).toBeUndefined();
    const line = audit
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.request_id === "http-trace-1");
    expect(line).toMatchObject({ transport: "http", trace_id: trace, decision: "allow" });
    expect(audit.join("")).not.toContain(token);
  });

  it("refuses forward-auth headers from a peer that is not a trusted proxy", async () => {
    const server = await startHttpAuthz("127.0.0.1:0", loadSettings({}), {
      pipeline: s.app.pipeline,
      runtime: () => s.app.current(),
      clock: Date.now,
      logger: createLogger("silent"),
      trustedHops: 0,
      trustedProxies: createIpList([], "none"),
      ready: () => true,
    });
    try {
      const r = await httpCall(server.port, "/auth/forward", forward("/v1/items"));
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ reasons: [{ code: "request.untrusted_proxy" }] });
    } finally {
      await server.close(1000);
    }
  });
});
