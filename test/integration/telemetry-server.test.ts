import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { buildCheckRequest } from "../../src/cli/check.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

interface Rig {
  server: TestServer;
  telemetry: Telemetry;
  spans: InMemorySpanExporter;
  raw: string[];
  audit: () => Record<string, unknown>[];
  scrape: () => Promise<string>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.server.stop();
    await r.telemetry.shutdown();
  }
});

/** The real server on port 0 with telemetry on: in-memory spans, audit to memory, /metrics. */
async function rig(policyText?: string): Promise<Rig> {
  const spans = new InMemorySpanExporter();
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      raw.push(String(chunk));
      done();
    },
  });
  const telemetry = createTelemetry(
    {
      tracing: { enabled: true, exporter: spans, subjectAttribute: "hash" },
      metrics: { enabled: true, address: "127.0.0.1:0" },
      audit: { enabled: true, allowSampleRate: 1, subject: "hash", destination },
      subjectHashKey: "integration",
    },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  const server = await startTestServer({ telemetry, ...(policyText ? { policyText } : {}) });
  const r: Rig = {
    server,
    telemetry,
    spans,
    raw,
    audit: () =>
      raw
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    scrape: async () => (await fetch(`http://127.0.0.1:${telemetry.metricsPort}/metrics`)).text(),
  };
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

/** Spans of the finished decisions (onDecision runs right after the answer is sent). */
async function checkSpans(r: Rig) {
  await r.telemetry.flush();
  return r.spans.getFinishedSpans().filter((s) => s.name === "riskgate.check");
}

describe("telemetry through the real Envoy Check server", () => {
  it("joins Envoy's trace from the call metadata (W3C and B3) and the request headers", async () => {
    const r = await rig();
    const token = await r.server.token({ sub: "ann", tier: "pro", amr: ["mfa"] });
    const w3c = new grpc.Metadata();
    w3c.set("traceparent", `00-${TRACE}-${PARENT}-01`);
    await r.server.client.check(get(token), w3c);
    const b3 = new grpc.Metadata();
    b3.set("x-b3-traceid", "a3ce929d0e0e47364bf92f3577b34da6");
    b3.set("x-b3-spanid", PARENT);
    b3.set("x-b3-sampled", "1");
    await r.server.client.check(get(token), b3);
    await r.server.client.check(get(token, { b3: `0af7651916cd43dd8448eb211c80319c-${PARENT}-1` }));
    const spans = await checkSpans(r);
    expect(spans.map((s) => [s.spanContext().traceId, s.parentSpanContext?.spanId])).toEqual([
      [TRACE, PARENT],
      ["a3ce929d0e0e47364bf92f3577b34da6", PARENT],
      ["0af7651916cd43dd8448eb211c80319c", PARENT],
    ]);
    expect(spans[0]?.attributes).toMatchObject({
      "riskgate.decision": "allow",
      "riskgate.tier": "pro",
      "riskgate.route": "api-read",
    });
    const children = r.spans
      .getFinishedSpans()
      .filter((s) => s.parentSpanContext?.spanId === spans[0]?.spanContext().spanId);
    expect(children.map((s) => s.name).sort()).toEqual(["riskgate.identify", "riskgate.store"]);
  });

  it("counts decisions and in-flight checks on /metrics", async () => {
    const r = await rig();
    const token = await r.server.token({ sub: "dee", tier: "free", amr: ["mfa"] });
    await r.server.client.check(get(token));
    await r.server.client.check(get(token, {}, "/billing"));
    const text = await r.scrape();
    expect(text).toContain(
      'riskgate_decisions_total{decision="allow",enforced="allow",tier="free",route="api-read",mode="enforce",transport="grpc"} 1',
    );
    expect(text).toContain(
      'riskgate_decisions_total{decision="deny",enforced="deny",tier="free",route="billing",mode="enforce",transport="grpc"} 1',
    );
    expect(text).toContain("riskgate_checks_in_flight 0");
  });

  it("audits with the span's trace id and never a token, cookie or API key", async () => {
    const r = await rig();
    const token = await r.server.token({ sub: "subject-eve-7", tier: "free", org: "acme-corp" });
    const md = new grpc.Metadata();
    md.set("traceparent", `00-${TRACE}-${PARENT}-01`);
    const headers = { cookie: `rg_session=${token}; theme=dark`, "x-api-key": "sk_live_abc123" };
    await r.server.client.check(get(token, headers), md);
    await r.server.client.check(get(`${token.slice(0, -4)}AAAA`, headers)); // a forged signature
    await r.telemetry.flush();
    const [first, second] = r.audit();
    expect(first).toMatchObject({
      decision: "allow",
      trace_id: TRACE,
      span_id: (await checkSpans(r))[0]?.spanContext().spanId,
      tier: "free",
      route: "api-read",
      client_ip: "203.0.113.7",
    });
    expect(second).toMatchObject({
      decision: "deny",
      reasons: [{ code: "identity.bad_signature" }],
    });
    const text = r.raw.join("");
    for (const secret of [
      token,
      token.split(".")[2] as string,
      "sk_live_abc123",
      "subject-eve-7",
    ]) {
      expect(text).not.toContain(secret);
    }
  });

  it("shadow mode allows while the audit line and metrics record the would-be denial", async () => {
    const policyText = readFileSync("policies/demo.yaml", "utf8").replace(
      "mode: enforce",
      "mode: shadow",
    );
    const r = await rig(policyText);
    const token = await r.server.token({ sub: "gil", tier: "free", amr: ["mfa"] });
    const res = await r.server.client.check(get(token, {}, "/billing/x"));
    expect(res.status.code).toBe(grpc.status.OK);
    const headers = Object.fromEntries(
      (res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]),
    );
    expect(headers["x-riskgate-shadow-decision"]).toBe("deny");
    expect(r.audit()).toEqual([
      expect.objectContaining({ decision: "allow", would_be: "deny", mode: "shadow" }),
    ]);
    expect(await r.scrape()).toContain(
      'riskgate_decisions_total{decision="allow",enforced="deny",tier="free",route="billing",mode="shadow",transport="grpc"} 1',
    );
    expect((await checkSpans(r))[0]?.attributes["riskgate.would_be"]).toBe("deny");
  });
});
