import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { buildCheckRequest } from "../../src/cli/check.js";
import type { Store } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

interface Rig {
  server: TestServer;
  telemetry: Telemetry;
  spans: InMemorySpanExporter;
  audit: Record<string, unknown>[];
  rawAudit: string[];
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.server.stop();
    await r.telemetry.shutdown();
  }
});

async function rig(
  options: { policyText?: string; store?: Store; allowSample?: number } = {},
): Promise<Rig> {
  const spans = new InMemorySpanExporter();
  const audit: Record<string, unknown>[] = [];
  const rawAudit: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) {
        if (line) {
          rawAudit.push(line);
          audit.push(JSON.parse(line));
        }
      }
      done();
    },
  });
  const telemetry = createTelemetry(
    {
      tracing: {
        enabled: true,
        exporter: spans,
        simple: true,
        serviceName: "riskgate-test",
        ratio: 1,
        subject: "hash",
      },
      metricsAddress: "127.0.0.1:0",
      audit: {
        enabled: true,
        allowSampleRate: options.allowSample ?? 1,
        subject: "hash",
        destination,
      },
      salt: "pepper",
    },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  const server = await startTestServer({ ...options, telemetry });
  const r = { server, telemetry, spans, audit, rawAudit };
  rigs.push(r);
  return r;
}

function get(token: string, headers: Record<string, string> = {}, path = "/v1/items") {
  return buildCheckRequest({
    method: "GET",
    path,
    host: "api.example.com",
    ip: "203.0.113.7",
    headers,
    token,
  });
}

async function until<T>(fn: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const checkSpan = (r: Rig) => () =>
  r.spans.getFinishedSpans().find((s) => s.name === "riskgate.check");

describe("tracing: the decision span joins the request's trace", () => {
  it("takes the parent from the gRPC metadata (Envoy's ext_authz span)", async () => {
    const r = await rig();
    const token = await r.server.token({ sub: "ann", tier: "pro", amr: ["mfa"] });
    const md = new grpc.Metadata();
    md.set("traceparent", `00-${TRACE}-${PARENT}-01`);
    await r.server.client.check(get(token), md);
    const span = await until(checkSpan(r), "span");
    expect(span.spanContext().traceId).toBe(TRACE);
    expect(span.parentSpanContext?.spanId).toBe(PARENT);
    expect(span.attributes).toMatchObject({
      "riskgate.decision": "allow",
      "riskgate.score": 0,
      "riskgate.risk_level": "low",
      "riskgate.tier": "pro",
      "riskgate.route": "api-read",
      "riskgate.mode": "enforce",
      "riskgate.failure_mode": "closed",
    });
    expect(span.attributes["enduser.id"]).toMatch(/^[0-9a-f]{16}$/);
    expect(span.attributes["enduser.id"]).not.toBe("ann");
    const children = r.spans.getFinishedSpans().filter((s) => s.name !== "riskgate.check");
    expect(children.map((s) => s.name).sort()).toEqual(["riskgate.identify", "riskgate.store"]);
    for (const c of children) expect(c.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
  });

  it("falls back to the original request's traceparent header", async () => {
    const r = await rig();
    const token = await r.server.token({ sub: "bo", tier: "pro", amr: ["mfa"] });
    await r.server.client.check(get(token, { traceparent: `00-${TRACE}-${PARENT}-01` }));
    const span = await until(checkSpan(r), "span");
    expect(span.spanContext().traceId).toBe(TRACE);
  });

  it("understands B3 single and multi headers", async () => {
    const r = await rig();
    const token = await r.server.token({ sub: "cy", tier: "pro", amr: ["mfa"] });
    await r.server.client.check(get(token, { b3: `${TRACE}-${PARENT}-1` }));
    const single = await until(checkSpan(r), "span");
    expect(single.spanContext().traceId).toBe(TRACE);
    r.spans.reset();
    const md = new grpc.Metadata();
    md.set("x-b3-traceid", "a3ce929d0e0e47364bf92f3577b34da6");
    md.set("x-b3-spanid", PARENT);
    md.set("x-b3-sampled", "1");
    await r.server.client.check(get(token), md);
    const multi = await until(checkSpan(r), "span");
    expect(multi.spanContext().traceId).toBe("a3ce929d0e0e47364bf92f3577b34da6");
  });

  it("marks the span as an error when the safe outcome came from an internal error", async () => {
    const broken: Store = {
      kind: "memory",
      exec: () => Promise.resolve({ results: 42 } as never),
      close: async () => {},
    };
    const r = await rig({ store: broken });
    const token = await r.server.token({ sub: "err", tier: "pro", amr: ["mfa"] });
    await r.server.client.check(get(token));
    const span = await until(checkSpan(r), "span");
    expect(span.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(span.attributes["riskgate.reasons"]).toEqual(["failure.internal"]);
  });
});

describe("metrics", () => {
  it("serves Prometheus text with counters that move", async () => {
    const r = await rig();
    const url = `http://127.0.0.1:${r.telemetry.metricsPort}/metrics`;
    const token = await r.server.token({ sub: "dee", tier: "free", amr: ["mfa"] });
    await r.server.client.check(get(token));
    await r.server.client.check(get(token, {}, "/billing"));
    const text = await (await fetch(url)).text();
    expect(text).toContain(
      'riskgate_decisions_total{decision="allow",enforced="allow",tier="free",route="api-read",mode="enforce"} 1',
    );
    expect(text).toContain(
      'riskgate_decisions_total{decision="deny",enforced="deny",tier="free",route="billing",mode="enforce"} 1',
    );
    expect(text).toContain(
      'riskgate_decision_reasons_total{reason="license.entitlement_missing"} 1',
    );
    expect(text).toMatch(/riskgate_decision_duration_seconds_count\{decision="allow"\} 1/);
    expect(text).toContain("riskgate_checks_in_flight 0");
    await r.server.client.check(get(token));
    const again = await (await fetch(url)).text();
    expect(again).toContain('tier="free",route="api-read",mode="enforce"} 2');
    expect((await fetch(`http://127.0.0.1:${r.telemetry.metricsPort}/other`)).status).toBe(404);
  });
});

describe("audit log", () => {
  it("writes one line per decision with its fields and never a credential", async () => {
    const r = await rig();
    const token = await r.server.token({
      sub: "subject-eve-7",
      tier: "free",
      org: "acme",
      amr: ["pwd"],
    });
    const req = get(token, {
      cookie: "rg_session=secret-cookie-value; other=1",
      "x-api-key": "key-123",
    });
    await r.server.client.check(req);
    await r.server.client.check(get(token, {}, "/billing/x"));
    const lines = await until(() => (r.audit.length >= 2 ? r.audit : undefined), "audit lines");
    expect(lines[0]).toMatchObject({
      log: "audit",
      event: "decision",
      decision: "allow",
      score: 10,
      reasons: [{ code: "auth.weak", points: 10, detail: "amr=pwd" }],
      tier: "free",
      entitlement: "api.read",
      route: "api-read",
      client_ip: "203.0.113.7",
      method: "GET",
      path: "/v1/items",
      mode: "enforce",
      failure_mode: "closed",
    });
    expect(lines[0]?.subject).toMatch(/^[0-9a-f]{16}$/);
    expect(lines[0]?.org).toMatch(/^[0-9a-f]{16}$/);
    expect(typeof lines[0]?.policy_version).toBe("string");
    expect(typeof lines[0]?.latency_ms).toBe("number");
    expect(lines[1]).toMatchObject({
      decision: "deny",
      reasons: [{ code: "license.entitlement_missing" }],
    });
    const everything = r.rawAudit.join("\n");
    for (const secret of [token, "secret-cookie-value", "key-123", "subject-eve-7", "acme"])
      expect(everything).not.toContain(secret);
  });

  it("samples allows but always writes denials", async () => {
    const r = await rig({ allowSample: 0 });
    const token = await r.server.token({ sub: "fay", tier: "free", amr: ["mfa"] });
    await r.server.client.check(get(token));
    await r.server.client.check(get(token, {}, "/billing"));
    const lines = await until(() => (r.audit.length >= 1 ? r.audit : undefined), "audit line");
    await new Promise((res) => setTimeout(res, 50));
    expect(r.audit.map((l) => l.decision)).toEqual(["deny"]);
    expect(lines).toHaveLength(1);
  });
});

describe("shadow mode", () => {
  it("allows while logging and counting the would-be denial", async () => {
    const policyText = readFileSync("policies/demo.yaml", "utf8").replace(
      "mode: enforce",
      "mode: shadow",
    );
    const r = await rig({ policyText });
    const token = await r.server.token({ sub: "gil", tier: "free", amr: ["mfa"] });
    const res = await r.server.client.check(get(token, {}, "/billing/x"));
    expect(res.status.code).toBe(grpc.status.OK);
    const headers = Object.fromEntries(
      (res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]),
    );
    expect(headers["x-riskgate-shadow-decision"]).toBe("deny");
    const line = await until(() => r.audit[0], "audit line");
    expect(line).toMatchObject({ decision: "allow", would_be: "deny", mode: "shadow" });
    const text = await (await fetch(`http://127.0.0.1:${r.telemetry.metricsPort}/metrics`)).text();
    expect(text).toContain(
      'riskgate_decisions_total{decision="allow",enforced="deny",tier="free",route="billing",mode="shadow"} 1',
    );
  });
});
