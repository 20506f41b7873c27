import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createMetrics } from "../../src/telemetry/metrics.js";
import {
  answerMetricsRequests,
  collectClusterMetrics,
  type WorkerChannel,
} from "../../src/telemetry/metrics-cluster.js";
import { parseListenAddress } from "../../src/telemetry/metrics-server.js";
import {
  createTelemetry,
  type DecisionEvent,
  type Telemetry,
} from "../../src/telemetry/telemetry.js";
import { accessRequest } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const demoText = readFileSync("policies/demo.yaml", "utf8");
const claims = {
  free: { sub: "u-free", tier: "free", org: "acme", amr: ["mfa"] },
  pro: { sub: "u-pro", tier: "pro", org: "acme", amr: ["pwd"] },
};

async function decide(
  token: keyof typeof claims,
  path = "/v1/items",
  policyText = demoText,
): Promise<DecisionEvent> {
  const runtime = policySnapshotOf(parsePolicy(policyText, "demo.yaml"), fakeIdentifier(claims));
  const pipeline = createPipeline({ store: createMemoryStore(), clock: () => NOW });
  const req = accessRequest({ path, headers: new Map([["authorization", `Bearer ${token}`]]) });
  const decision = await pipeline.evaluate(runtime, req);
  return { decision, req, traceHeader: () => undefined, durationNs: 420_000n };
}

const live: Telemetry[] = [];
afterEach(async () => {
  for (const t of live.splice(0)) await t.shutdown();
});

async function served(): Promise<{ telemetry: Telemetry; scrape: () => Promise<string> }> {
  const telemetry = createTelemetry(
    {
      tracing: { enabled: false, subjectAttribute: "off" },
      metrics: { enabled: true, address: "127.0.0.1:0" },
      audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
    },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  live.push(telemetry);
  const url = `http://127.0.0.1:${telemetry.metricsPort}/metrics`;
  return {
    telemetry,
    scrape: async () => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      return res.text();
    },
  };
}

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("the /metrics endpoint", () => {
  it("serves Prometheus text whose counters move with decisions", async () => {
    const { telemetry, scrape } = await served();
    expect(telemetry.metricsPort).toBeGreaterThan(0);
    const allowSeries =
      'riskgate_decisions_total{decision="allow",enforced="allow",tier="free",route="api-read",mode="enforce",transport="grpc"}';
    expect(sample(await scrape(), allowSeries)).toBeUndefined();

    telemetry.onDecision(await decide("free"));
    telemetry.onDecision(await decide("free", "/billing"));
    let text = await scrape();
    expect(sample(text, allowSeries)).toBe(1);
    expect(
      sample(
        text,
        'riskgate_decisions_total{decision="deny",enforced="deny",tier="free",route="billing",mode="enforce",transport="grpc"}',
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        'riskgate_decision_reasons_total{reason="license.entitlement_missing",enforced="deny"}',
      ),
    ).toBe(1);
    expect(sample(text, 'riskgate_decision_duration_seconds_count{decision="allow"}')).toBe(1);
    // 420 us: in the 0.0005 bucket, not in the 0.0003 one
    expect(
      sample(text, 'riskgate_decision_duration_seconds_bucket{le="0.0003",decision="allow"}'),
    ).toBe(0);
    expect(
      sample(text, 'riskgate_decision_duration_seconds_bucket{le="0.0005",decision="allow"}'),
    ).toBe(1);

    telemetry.onDecision(await decide("free"));
    text = await scrape();
    expect(sample(text, allowSeries)).toBe(2);
  });

  it("labels each decision with the transport that answered it", async () => {
    const { telemetry, scrape } = await served();
    telemetry.onDecision(await decide("free"));
    telemetry.onDecision({ ...(await decide("free")), transport: "http" });
    telemetry.onDecision({ ...(await decide("free")), transport: "http" });
    const text = await scrape();
    const series = (t: string) =>
      `riskgate_decisions_total{decision="allow",enforced="allow",tier="free",route="api-read",mode="enforce",transport="${t}"}`;
    expect(sample(text, series("grpc"))).toBe(1);
    expect(sample(text, series("http"))).toBe(2);
  });

  it("counts what the other parts report through the hooks", async () => {
    const { telemetry, scrape } = await served();
    telemetry.inflight(1);
    telemetry.inflight(1);
    telemetry.inflight(-1);
    telemetry.storeCall(0.08, true);
    telemetry.storeCall(12, false);
    telemetry.breakerState("open");
    telemetry.jwks("refresh");
    telemetry.jwks("failure");
    telemetry.tokenVerification(true);
    telemetry.tokenVerification(true);
    telemetry.tokenVerification(false);
    telemetry.policyReload(true);
    telemetry.policyReload(false);
    telemetry.policyReload(false);
    const text = await scrape();
    expect(sample(text, "riskgate_checks_in_flight")).toBe(1);
    expect(sample(text, 'riskgate_store_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(sample(text, 'riskgate_store_duration_seconds_bucket{le="0.0001",outcome="ok"}')).toBe(
      1,
    );
    expect(sample(text, 'riskgate_store_duration_seconds_count{outcome="error"}')).toBe(1);
    expect(sample(text, "riskgate_store_errors_total")).toBe(1);
    expect(sample(text, "riskgate_store_breaker_state")).toBe(2);
    expect(sample(text, 'riskgate_jwks_fetches_total{outcome="ok"}')).toBe(1);
    expect(sample(text, 'riskgate_jwks_fetches_total{outcome="error"}')).toBe(1);
    expect(sample(text, 'riskgate_token_verifications_total{outcome="ok"}')).toBe(2);
    expect(sample(text, 'riskgate_token_verifications_total{outcome="error"}')).toBe(1);
    expect(sample(text, 'riskgate_policy_reloads_total{outcome="ok"}')).toBe(1);
    expect(sample(text, 'riskgate_policy_reloads_total{outcome="error"}')).toBe(2);
    telemetry.breakerState("closed");
    expect(sample(await scrape(), "riskgate_store_breaker_state")).toBe(0);
  });

  it("serves the process's memory, CPU, event-loop lag and GC metrics too", async () => {
    const { scrape } = await served();
    const text = await scrape();
    const rss = sample(text, "process_resident_memory_bytes") ?? 0;
    expect(rss).toBeGreaterThan(process.memoryUsage().heapUsed / 4);
    expect(sample(text, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(text).toContain("# TYPE nodejs_gc_duration_seconds histogram");
  });

  it("records the policy's own outcome of shadowed decisions", async () => {
    const { telemetry, scrape } = await served();
    telemetry.onDecision(
      await decide("free", "/billing", demoText.replace("mode: enforce", "mode: shadow")),
    );
    const text = await scrape();
    expect(
      sample(
        text,
        'riskgate_decisions_total{decision="allow",enforced="deny",tier="free",route="billing",mode="shadow",transport="grpc"}',
      ),
    ).toBe(1);
  });

  it("answers 404 elsewhere and HEAD without a body", async () => {
    const { telemetry } = await served();
    const base = `http://127.0.0.1:${telemetry.metricsPort}`;
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(404);
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("closes the server on shutdown, keep-alive scrapers included", async () => {
    const { telemetry, scrape } = await served();
    await scrape();
    const port = telemetry.metricsPort;
    await telemetry.shutdown();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it("with metrics off, serves nothing and the hooks are harmless", async () => {
    const telemetry = createTelemetry(
      {
        tracing: { enabled: false, subjectAttribute: "off" },
        metrics: { enabled: false, address: "127.0.0.1:0" },
        audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
      },
      { logger: createLogger("silent") },
    );
    await telemetry.start();
    live.push(telemetry);
    expect(telemetry.metricsPort).toBeUndefined();
    telemetry.inflight(1);
    telemetry.onDecision(await decide("free"));
  });
});

describe("label cardinality", () => {
  it("keeps tier values bounded whatever tokens claim", async () => {
    const metrics = createMetrics();
    const event = await decide("free");
    for (let i = 0; i < 100; i++) {
      const verdict = { ...event.decision.verdict, tier: `tier-${i}` };
      metrics.decision({ ...event, decision: { ...event.decision, verdict, enforced: verdict } });
    }
    const decisions = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === "riskgate_decisions_total",
    );
    const tiers = new Set(decisions?.values.map((v) => v.labels.tier));
    expect(tiers.size).toBe(65); // 64 distinct, then "other"
    expect(tiers.has("other")).toBe(true);
  });
});

describe("--workers: the primary serves the merged metrics of all workers", () => {
  /** A cluster worker's IPC channel pair, in one process. */
  function channelPair(): { primarySide: WorkerChannel; detach: () => void } {
    const toWorker = new EventEmitter();
    const toPrimary = new EventEmitter();
    const metrics = createMetrics();
    metrics.inflight(1);
    metrics.jwks("refresh");
    metrics.breakerState("half_open");
    const detach = answerMetricsRequests(metrics.registry, {
      on: (e, l) => toWorker.on(e, l),
      off: (e, l) => toWorker.off(e, l),
      send: (m) => toPrimary.emit("message", structuredClone(m)),
    });
    return {
      primarySide: {
        on: (e, l) => toPrimary.on(e, l),
        off: (e, l) => toPrimary.off(e, l),
        send: (m) => toWorker.emit("message", structuredClone(m)),
      },
      detach,
    };
  }

  it("sums counters and gauges, takes the worst breaker state", async () => {
    const a = channelPair();
    const b = channelPair();
    const { body } = await collectClusterMetrics([a.primarySide, b.primarySide], 1000);
    expect(sample(body, "riskgate_checks_in_flight")).toBe(2);
    expect(sample(body, 'riskgate_jwks_fetches_total{outcome="ok"}')).toBe(2);
    expect(sample(body, "riskgate_store_breaker_state")).toBe(1);
    a.detach();
    b.detach();
  });

  it("leaves out a worker that does not answer in time", async () => {
    const a = channelPair();
    const silent: WorkerChannel = { on: () => {}, off: () => {}, send: () => true };
    const { body } = await collectClusterMetrics([a.primarySide, silent], 50);
    expect(sample(body, "riskgate_checks_in_flight")).toBe(1);
    a.detach();
  });
});

describe("listen addresses", () => {
  it("reads host:port, :port and [v6]:port", () => {
    expect(parseListenAddress("0.0.0.0:9464")).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(parseListenAddress(":9464")).toEqual({ host: undefined, port: 9464 });
    expect(parseListenAddress("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(() => parseListenAddress("9464")).toThrow(TypeError);
    expect(() => parseListenAddress("host:99999")).toThrow(TypeError);
  });
});
