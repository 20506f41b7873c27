import { readFileSync } from "node:fs";
import { SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { type Decision, fixedDecision } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { createLogger } from "../../src/telemetry/logger.js";
import {
  createTelemetry,
  type DecisionEvent,
  type Telemetry,
} from "../../src/telemetry/telemetry.js";
import { accessRequest } from "../helpers/access-request.js";

const policy = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

/** A decision whose stages heard from two header sources and the webhook. */
function event(webhook: NonNullable<Decision["timings"]["webhook"]>["outcome"]): DecisionEvent {
  const now = performance.now();
  const decision: Decision = {
    ...fixedDecision(policy, { kind: "allow", requestId: "r1", score: 0, reasons: [] }),
    timings: {
      external: [
        { source: "cloudflare_bot", outcome: "scored" },
        { source: "fastly_ngwaf", outcome: "untrusted" },
      ],
      webhook: { start: now - 12, end: now - 2, outcome: webhook },
    },
  };
  const metadata: Record<string, string> = { traceparent: `00-${TRACE}-${PARENT}-01` };
  return {
    decision,
    req: accessRequest(),
    traceHeader: (n) => metadata[n],
    durationNs: 15_000_000n,
  };
}

const live: Telemetry[] = [];
afterEach(async () => {
  for (const t of live.splice(0)) await t.shutdown();
});

async function telemetryOf(exporter?: InMemorySpanExporter): Promise<Telemetry> {
  const telemetry = createTelemetry(
    {
      tracing:
        exporter === undefined
          ? { enabled: false, subjectAttribute: "off" }
          : { enabled: true, exporter, subjectAttribute: "off" },
      metrics: { enabled: exporter === undefined, address: "127.0.0.1:0" },
      audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
    },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  live.push(telemetry);
  return telemetry;
}

const sample = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("external sources and the webhook in telemetry", () => {
  it("count sources by outcome, webhook calls, failures by kind and latency", async () => {
    const telemetry = await telemetryOf();
    telemetry.onDecision(event("ok"));
    telemetry.onDecision(event("timeout"));
    telemetry.onDecision(event("breaker_open"));
    telemetry.webhookBreakerState("open");
    const text = await (await fetch(`http://127.0.0.1:${telemetry.metricsPort}/metrics`)).text();
    expect(
      sample(
        text,
        'riskgate_external_source_reads_total{source="cloudflare_bot",outcome="scored"}',
      ),
    ).toBe(3);
    expect(
      sample(
        text,
        'riskgate_external_source_reads_total{source="fastly_ngwaf",outcome="untrusted"}',
      ),
    ).toBe(3);
    expect(sample(text, 'riskgate_webhook_calls_total{outcome="ok"}')).toBe(1);
    expect(sample(text, 'riskgate_webhook_failures_total{kind="timeout"}')).toBe(1);
    expect(sample(text, 'riskgate_webhook_failures_total{kind="breaker_open"}')).toBe(1);
    // calls that went out: the ok one and the timed-out one, not the one the breaker refused
    expect(sample(text, 'riskgate_webhook_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(sample(text, 'riskgate_webhook_duration_seconds_count{outcome="error"}')).toBe(1);
    expect(sample(text, 'riskgate_webhook_duration_seconds_bucket{le="0.005",outcome="ok"}')).toBe(
      0,
    );
    expect(sample(text, 'riskgate_webhook_duration_seconds_bucket{le="0.01",outcome="ok"}')).toBe(
      1,
    );
    expect(sample(text, "riskgate_webhook_breaker_state")).toBe(2);
  });

  it("draw a webhook span and one span per source, children of the Check span", async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = await telemetryOf(exporter);
    telemetry.onDecision(event("timeout"));
    await telemetry.flush();
    const spans = exporter.getFinishedSpans();
    const check = spans.find((s) => s.name === "riskgate.check");
    const webhook = spans.find((s) => s.name === "riskgate.webhook");
    const sources = spans.filter((s) => s.name === "riskgate.external_source");
    expect(check?.spanContext().traceId).toBe(TRACE);
    for (const child of [webhook, ...sources]) {
      expect(child?.parentSpanContext?.spanId).toBe(check?.spanContext().spanId);
    }
    expect(webhook?.attributes["riskgate.webhook.outcome"]).toBe("timeout");
    expect(webhook?.status.code).toBe(SpanStatusCode.ERROR);
    expect(sources.map((s) => s.attributes)).toEqual([
      { "riskgate.external.source": "cloudflare_bot", "riskgate.external.outcome": "scored" },
      { "riskgate.external.source": "fastly_ngwaf", "riskgate.external.outcome": "untrusted" },
    ]);
  });
});
