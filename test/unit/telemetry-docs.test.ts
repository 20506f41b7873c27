import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createMetrics } from "../../src/telemetry/metrics.js";
import { createTelemetry, type DecisionEvent } from "../../src/telemetry/telemetry.js";
import { accessRequest } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

/** The page that explains spans and audit fields, and the one that lists every metric. */
const OBSERVABILITY_DOC = "docs/observability.md";
const METRICS_DOC = "docs/reference/metrics.md";
const doc = readFileSync(OBSERVABILITY_DOC, "utf8");
const metricsDoc = readFileSync(METRICS_DOC, "utf8");
const dashboard = readFileSync("dashboards/riskgate.json", "utf8");
const demoText = readFileSync("policies/demo.yaml", "utf8");
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

/** Names a doc spells as code (`name`). */
const codeNames = (text: string) => new Set([...text.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]));
const documented = codeNames(doc);
const documentedMetrics = codeNames(metricsDoc);

/** riskgate's own metrics (prom-client's standard process_* and nodejs_* ones are not listed). */
async function exported(): Promise<string[]> {
  return (await createMetrics().registry.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((name) => name.startsWith("riskgate_"));
}

/** Decisions that between them use every span attribute and audit field. */
async function events(): Promise<DecisionEvent[]> {
  const claims = {
    pro: { sub: "u-pro", tier: "pro", org: "acme", amr: ["pwd"] },
    free: { sub: "u-free", tier: "free", org: "acme", amr: ["mfa"] },
  };
  const down: Store = {
    kind: "memory",
    exec: () => Promise.reject(new Error("down")),
    close: async () => {},
  };
  const run = async (token: string, path: string, policyText = demoText, store?: Store) => {
    const runtime = policySnapshotOf(parsePolicy(policyText, "demo.yaml"), fakeIdentifier(claims));
    const pipeline = createPipeline({ store: store ?? createMemoryStore(), clock: () => NOW });
    const req = accessRequest({ path, headers: new Map([["authorization", `Bearer ${token}`]]) });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const traceHeader = (name: string) => (name === "traceparent" ? traceparent : undefined);
    const decision = await pipeline.evaluate(runtime, req);
    return { decision: { ...decision, country: "DE" }, req, traceHeader, durationNs: 1000n };
  };
  return [
    await run("pro", "/v1/items"),
    await run("free", "/billing", demoText.replace("mode: enforce", "mode: shadow")),
    await run("pro", "/v1/items", demoText, down),
    { ...(await run("pro", "/v1/items")), transport: "http" },
  ];
}

describe("the observability doc and dashboard are in step with the code", () => {
  it("the dashboard queries only exported metrics, and covers each of them", async () => {
    const names = await exported();
    const used = new Set(
      [...dashboard.matchAll(/riskgate_[a-z_]+/g)].map((m) =>
        m[0].replace(/_(bucket|count|sum)$/, ""),
      ),
    );
    expect([...used].filter((n) => !names.includes(n))).toEqual([]);
    expect(names.filter((n) => !used.has(n))).toEqual([]);
    const ids = (JSON.parse(dashboard) as { panels: { id: number }[] }).panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("the metrics reference lists every metric", async () => {
    expect((await exported()).filter((n) => !documentedMetrics.has(n))).toEqual([]);
  });

  it("the doc lists every span attribute and audit field riskgate writes", async () => {
    const spans = new InMemorySpanExporter();
    const lines: string[] = [];
    const telemetry = createTelemetry(
      {
        tracing: { enabled: true, exporter: spans, subjectAttribute: "hash" },
        metrics: { enabled: false },
        audit: {
          enabled: true,
          allowSampleRate: 0.5,
          random: () => 0,
          subject: "hash",
          destination: new Writable({
            write(chunk, _enc, done) {
              lines.push(String(chunk));
              done();
            },
          }),
        },
        subjectHashKey: "k",
      },
      { logger: createLogger("silent") },
    );
    await telemetry.start();
    for (const event of await events()) telemetry.onDecision(event);
    await telemetry.flush();
    await telemetry.shutdown();

    const attributes = new Set<string>();
    const spanNames = new Set<string>();
    for (const span of spans.getFinishedSpans()) {
      spanNames.add(span.name);
      for (const key of Object.keys(span.attributes)) attributes.add(key);
      for (const e of span.events)
        for (const key of Object.keys(e.attributes ?? {})) attributes.add(key);
    }
    expect([...spanNames].filter((n) => !documented.has(n))).toEqual([]);
    expect([...attributes].filter((a) => !documented.has(a))).toEqual([]);

    const fields = new Set(
      lines
        .join("")
        .split("\n")
        .filter(Boolean)
        .flatMap((l) => Object.keys(JSON.parse(l))),
    );
    expect(fields.size).toBeGreaterThan(20);
    expect([...fields].filter((f) => !documented.has(f))).toEqual([]);
  });
});
