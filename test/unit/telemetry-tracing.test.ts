import { readFileSync } from "node:fs";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import {
  createTelemetry,
  type DecisionEvent,
  type Telemetry,
  type TelemetryOptions,
} from "../../src/telemetry/telemetry.js";
import { accessRequest } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const demoText = readFileSync("policies/demo.yaml", "utf8");
const claims = {
  pro: { sub: "u-pro", tier: "pro", org: "acme", amr: ["mfa"] },
  free: { sub: "u-free", tier: "free", org: "acme", amr: ["mfa"] },
  cached: {
    kind: "verified",
    claims: { sub: "u-pro", tier: "pro", amr: ["mfa"] },
    source: "bearer",
    cached: true,
  } as const,
};

/** A DecisionEvent from a real pipeline run on the demo policy (fake identity, memory store). */
async function decide(
  options: {
    token?: keyof typeof claims;
    path?: string;
    headers?: Record<string, string>;
    metadata?: Record<string, string>;
    store?: Store;
    policyText?: string;
  } = {},
): Promise<DecisionEvent> {
  const runtime = policySnapshotOf(
    parsePolicy(options.policyText ?? demoText, "demo.yaml"),
    fakeIdentifier(claims),
  );
  const pipeline = createPipeline({
    store: options.store ?? createMemoryStore(),
    clock: () => NOW,
  });
  const headers = new Map(Object.entries(options.headers ?? {}));
  if (options.token) headers.set("authorization", `Bearer ${options.token}`);
  const req = accessRequest({ path: options.path ?? "/v1/items", headers });
  const metadata = options.metadata ?? {};
  const started = process.hrtime.bigint();
  const decision = await pipeline.evaluate(runtime, req);
  return {
    decision,
    req,
    traceHeader: (name) => metadata[name],
    durationNs: process.hrtime.bigint() - started,
  };
}

const live: Telemetry[] = [];
afterEach(async () => {
  for (const t of live.splice(0)) await t.shutdown();
});

async function tracer(
  tracing: Partial<TelemetryOptions["tracing"]> = {},
  subjectHashKey = "k",
): Promise<{ telemetry: Telemetry; spans: () => Promise<ReadableSpan[]> }> {
  const exporter = new InMemorySpanExporter();
  const telemetry = createTelemetry(
    {
      tracing: { enabled: true, exporter, subjectAttribute: "hash", ...tracing },
      metrics: { enabled: false },
      audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
      subjectHashKey,
    },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  live.push(telemetry);
  return {
    telemetry,
    spans: async () => {
      await telemetry.flush();
      return exporter.getFinishedSpans();
    },
  };
}

const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const only = (spans: ReadableSpan[], name: string): ReadableSpan => {
  const found = named(spans, name);
  expect(found, `exactly one ${name} span`).toHaveLength(1);
  return found[0] as ReadableSpan;
};

describe("the decision span joins the request's trace", () => {
  it("takes the parent from the gRPC metadata (Envoy's ext_authz span)", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(
      await decide({ token: "pro", metadata: { traceparent: `00-${TRACE}-${PARENT}-01` } }),
    );
    const span = only(await spans(), "riskgate.check");
    expect(span.spanContext().traceId).toBe(TRACE);
    expect(span.parentSpanContext?.spanId).toBe(PARENT);
    expect(span.parentSpanContext?.isRemote).toBe(true);
    expect(span.kind).toBe(SpanKind.SERVER);
  });

  it("falls back to the original request's traceparent header", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(
      await decide({ token: "pro", headers: { traceparent: `00-${TRACE}-${PARENT}-01` } }),
    );
    const span = only(await spans(), "riskgate.check");
    expect(span.spanContext().traceId).toBe(TRACE);
    expect(span.parentSpanContext?.spanId).toBe(PARENT);
  });

  it("prefers the call's metadata over the request's headers", async () => {
    const { telemetry, spans } = await tracer();
    const other = "0af7651916cd43dd8448eb211c80319c";
    telemetry.onDecision(
      await decide({
        token: "pro",
        metadata: { traceparent: `00-${TRACE}-${PARENT}-01` },
        headers: { traceparent: `00-${other}-b7ad6b7169203331-01` },
      }),
    );
    expect(only(await spans(), "riskgate.check").spanContext().traceId).toBe(TRACE);
  });

  it("understands B3 single header in the request", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(await decide({ token: "pro", headers: { b3: `${TRACE}-${PARENT}-1` } }));
    const span = only(await spans(), "riskgate.check");
    expect(span.spanContext().traceId).toBe(TRACE);
    expect(span.parentSpanContext?.spanId).toBe(PARENT);
  });

  it("understands B3 multi headers in the metadata, 64-bit trace ids padded", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(
      await decide({
        token: "pro",
        metadata: {
          "x-b3-traceid": "a3ce929d0e0e4736",
          "x-b3-spanid": PARENT,
          "x-b3-sampled": "1",
        },
      }),
    );
    const span = only(await spans(), "riskgate.check");
    expect(span.spanContext().traceId).toBe("0000000000000000a3ce929d0e0e4736");
    expect(span.parentSpanContext?.spanId).toBe(PARENT);
  });

  it("keeps tracestate from the caller", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(
      await decide({
        token: "pro",
        metadata: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: "vendor=abc" },
      }),
    );
    const span = only(await spans(), "riskgate.check");
    expect(span.spanContext().traceState?.get("vendor")).toBe("abc");
  });

  it("starts a new trace when the request carries none", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(await decide({ token: "pro" }));
    const span = only(await spans(), "riskgate.check");
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe("sampling", () => {
  it("follows a caller that did not sample: no span at all", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(
      await decide({ token: "pro", metadata: { traceparent: `00-${TRACE}-${PARENT}-00` } }),
    );
    telemetry.onDecision(await decide({ token: "pro", headers: { b3: `${TRACE}-${PARENT}-0` } }));
    expect(await spans()).toEqual([]);
  });

  it("with parentbased_always_off, still traces requests whose caller sampled them", async () => {
    const { telemetry, spans } = await tracer({ sampler: "parentbased_always_off" });
    telemetry.onDecision(await decide({ token: "pro" }));
    expect(await spans()).toEqual([]);
    telemetry.onDecision(
      await decide({ token: "pro", metadata: { traceparent: `00-${TRACE}-${PARENT}-01` } }),
    );
    expect(named(await spans(), "riskgate.check")).toHaveLength(1);
  });

  it("with traceidratio 0 and no parent, records nothing", async () => {
    const { telemetry, spans } = await tracer({ sampler: "traceidratio", samplerRatio: 0 });
    telemetry.onDecision(await decide({ token: "pro" }));
    expect(await spans()).toEqual([]);
  });
});

describe("what the span says", () => {
  it("carries the decision's attributes and one event per reason", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(await decide({ token: "free", path: "/billing/invoices" }));
    const span = only(await spans(), "riskgate.check");
    expect(span.attributes).toMatchObject({
      "rpc.system.name": "grpc",
      "rpc.method": "envoy.service.auth.v3.Authorization/Check",
      "riskgate.decision": "deny",
      "riskgate.score": 0,
      "riskgate.risk_level": "low",
      "riskgate.reasons": ["license.entitlement_missing"],
      "riskgate.tier": "free",
      "riskgate.route": "billing",
      "riskgate.entitlement": "billing.manage",
      "riskgate.mode": "enforce",
      "riskgate.request_id": "req-1",
      "http.request.method": "GET",
      "url.path": "/billing/invoices",
      "client.address": "203.0.113.7",
    });
    expect(typeof span.attributes["riskgate.policy_version"]).toBe("string");
    // situational attributes appear only in their situation (each costs on every span)
    expect(span.attributes).not.toHaveProperty("riskgate.would_be");
    expect(span.attributes).not.toHaveProperty("riskgate.failure_mode");
    expect(span.events.map((e) => e.attributes)).toEqual([
      {
        "riskgate.reason.code": "license.entitlement_missing",
        "riskgate.reason.points": 0,
        "riskgate.reason.detail": "needs billing.manage",
      },
    ]);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("draws identity and store children inside the decision span, with the store latency", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(
      await decide({ token: "pro", metadata: { traceparent: `00-${TRACE}-${PARENT}-01` } }),
    );
    const all = await spans();
    const check = only(all, "riskgate.check");
    const toNs = (t: [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
    for (const name of ["riskgate.identify", "riskgate.store"]) {
      const child = only(all, name);
      expect(child.parentSpanContext?.spanId).toBe(check.spanContext().spanId);
      expect(child.spanContext().traceId).toBe(TRACE);
      // drawn from the pipeline's own timings: inside the decision, never after it
      expect(toNs(child.startTime)).toBeGreaterThanOrEqual(toNs(check.startTime) - 1_000_000n);
      expect(toNs(child.endTime)).toBeLessThanOrEqual(toNs(check.endTime));
    }
    expect(check.attributes).toMatchObject({
      "riskgate.identity_source": "bearer",
      "riskgate.token_cached": false,
    });
    expect(only(all, "riskgate.store").attributes["riskgate.store_ops"]).toBeGreaterThan(0);
    expect(check.attributes["riskgate.store_ms"]).toBeGreaterThanOrEqual(0);
  });

  it("draws no identify child for a token verified from the cache", async () => {
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(await decide({ token: "cached" }));
    const all = await spans();
    expect(all.map((s) => s.name).sort()).toEqual(["riskgate.check", "riskgate.store"]);
    expect(only(all, "riskgate.check").attributes["riskgate.token_cached"]).toBe(true);
  });

  it("names the failure mode when a failure decided", async () => {
    const down: Store = {
      kind: "memory",
      exec: () => Promise.reject(new Error("connection refused")),
      close: async () => {},
    };
    const { telemetry, spans } = await tracer();
    telemetry.onDecision(await decide({ token: "pro", store: down }));
    const all = await spans();
    expect(only(all, "riskgate.check").attributes).toMatchObject({
      "riskgate.decision": "deny",
      "riskgate.reasons": ["failure.store"],
      "riskgate.failure_mode": "closed",
    });
    // the store failed, but the decision is the configured one: not an internal error
    expect(only(all, "riskgate.check").status.code).toBe(SpanStatusCode.UNSET);
    expect(only(all, "riskgate.store").status.code).toBe(SpanStatusCode.ERROR);
  });

  it("names the subject only as the setting allows", async () => {
    const hashed = await tracer({ subjectAttribute: "hash" }, "key-1");
    hashed.telemetry.onDecision(await decide({ token: "pro" }));
    const pseudonym = only(await hashed.spans(), "riskgate.check").attributes["user.id"];
    expect(pseudonym).toMatch(/^[0-9a-f]{16}$/);

    const otherKey = await tracer({ subjectAttribute: "hash" }, "key-2");
    otherKey.telemetry.onDecision(await decide({ token: "pro" }));
    const other = only(await otherKey.spans(), "riskgate.check").attributes["user.id"];
    expect(other).not.toBe(pseudonym); // keyed: a different key, a different pseudonym

    const plain = await tracer({ subjectAttribute: "plain" });
    plain.telemetry.onDecision(await decide({ token: "pro" }));
    expect(only(await plain.spans(), "riskgate.check").attributes["user.id"]).toBe("u-pro");

    const off = await tracer({ subjectAttribute: "off" });
    off.telemetry.onDecision(await decide({ token: "pro" }));
    expect(only(await off.spans(), "riskgate.check").attributes).not.toHaveProperty("user.id");
  });

  it("records what shadow mode would have done", async () => {
    const { telemetry, spans } = await tracer();
    const event = await decide({
      token: "free",
      path: "/billing",
      policyText: demoText.replace("mode: enforce", "mode: shadow"),
    });
    expect(event.decision.verdict.kind).toBe("allow");
    telemetry.onDecision(event);
    expect(only(await spans(), "riskgate.check").attributes).toMatchObject({
      "riskgate.decision": "allow",
      "riskgate.would_be": "deny",
      "riskgate.mode": "shadow",
    });
  });

  it("sets ERROR status when the outcome came from an internal error", async () => {
    const broken: Store = {
      kind: "memory",
      exec: () => Promise.resolve({ results: 42 } as never),
      close: async () => {},
    };
    const { telemetry, spans } = await tracer();
    // the pipeline throws; the transport's error boundary answers the safe outcome
    const error = await decide({ token: "pro", store: broken }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TypeError);
    const event = await decide({ token: "pro" });
    const safe = {
      ...event.decision,
      verdict: {
        requestId: "req-1",
        score: 0,
        reasons: [{ code: "failure.internal" as const, points: 0 }],
        kind: "deny" as const,
        cause: "failure" as const,
      },
    };
    telemetry.onDecision({ ...event, decision: { ...safe, enforced: safe.verdict }, error });
    const span = only(await spans(), "riskgate.check");
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.events.some((e) => e.name === "exception")).toBe(true);
  });

  it("does not call a malformed request an internal error", async () => {
    const { telemetry, spans } = await tracer();
    const event = await decide({ token: "pro" });
    const verdict = {
      requestId: "",
      score: 0,
      reasons: [{ code: "request.malformed" as const, points: 0 }],
      kind: "deny" as const,
      cause: "malformed" as const,
    };
    telemetry.onDecision({
      ...event,
      req: undefined,
      decision: { ...event.decision, verdict, enforced: verdict, timings: {} },
      error: new Error("no http attributes"),
    });
    expect(only(await spans(), "riskgate.check").status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe("with tracing off", () => {
  it("builds no tracer and records nothing", async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = createTelemetry(
      {
        tracing: { enabled: false, exporter, subjectAttribute: "hash" },
        metrics: { enabled: false },
        audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
      },
      { logger: createLogger("silent") },
    );
    await telemetry.start();
    live.push(telemetry);
    telemetry.onDecision(
      await decide({ token: "pro", metadata: { traceparent: `00-${TRACE}-${PARENT}-01` } }),
    );
    await telemetry.flush();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
