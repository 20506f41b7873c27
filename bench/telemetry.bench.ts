/**
 * Telemetry micro-benchmark (a plain script, not vitest):
 *
 *   npm run build && node dist/bench/telemetry.bench.js [events]
 *
 * What one decision costs the server in telemetry: `onDecision` is fed DecisionEvents from real
 * pipeline runs of bench/policy.yaml's sibling, the demo policy (80% allows, denials,
 * challenges; each Check carrying Envoy's traceparent), with each part on or off. Events are fed
 * in ticks of 64, as a busy server would, so the batch span exporter and the asynchronous audit
 * writes run between them as they would in production; spans go to a real OTLP/HTTP
 * (protobuf) collector stub in a child process, audit lines to /dev/null through the real
 * asynchronous destination. Reports process CPU per event (all threads, the deferred export
 * and write work included, the feeding loop's own cost subtracted) and what that costs a
 * server doing 60 us of CPU per Check. Prints a Markdown table.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { Identifier } from "../src/access/identity.js";
import { createPipeline } from "../src/access/pipeline.js";
import { parsePolicy } from "../src/access/policy.js";
import { policySnapshotOf } from "../src/access/policy-snapshot.js";
import type { AccessRequest } from "../src/access/request.js";
import { createMemoryStore } from "../src/state/memory-store.js";
import { openAuditStream } from "../src/telemetry/audit.js";
import { createLogger } from "../src/telemetry/logger.js";
import {
  createTelemetry,
  type DecisionEvent,
  type TelemetryOptions,
} from "../src/telemetry/telemetry.js";
import { metadataHeader } from "../src/transport/envoy-grpc.js";

const EVENTS = Number(process.argv[2] ?? 60_000);
const ROUNDS = 3;
const TICK = 64;
/** CPU per Check of a server without telemetry, to express the cost as throughput. */
const CHECK_US = 60;

/** A stand-in identity stage: the token names the caller (real JWTs cost is not measured here). */
function identifier(): Identifier {
  const tiers = ["free", "pro", "enterprise"];
  return {
    identify(req) {
      const sub = req.headers.get("authorization")?.slice(7) ?? "";
      const n = Number(sub.slice(2));
      const amr = n % 7 === 0 ? ["pwd"] : ["mfa"];
      const tier = tiers[n % 3] ?? "";
      const org = `org-${n % 50}`;
      return Promise.resolve({
        kind: "verified",
        caller: { subject: sub, org, tier, entitlements: [], amr, acr: "", anonymous: false },
        claims: { sub, tier, org, amr },
        source: "bearer",
        cached: true,
      });
    },
    ready: () => Promise.resolve(),
    stats: () => ({ verifications: 0, cacheHits: 0, failures: 0 }),
  };
}

type EventSet = "sampled" | "unsampled" | "untraced";

/** 2,000 decisions of the demo policy, each in a sampled, an unsampled and no trace. */
async function buildEvents(): Promise<Record<EventSet, DecisionEvent[]>> {
  const policy = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");
  const runtime = policySnapshotOf(policy, identifier());
  const pipeline = createPipeline({ store: createMemoryStore(), clock: Date.now });
  const paths = [
    "/v1/items",
    "/v1/items/42",
    "/v1/reports/q3/export",
    "/billing/invoices",
    "/admin/users",
  ];
  const sets: Record<EventSet, DecisionEvent[]> = { sampled: [], unsampled: [], untraced: [] };
  for (let i = 0; i < 2000; i++) {
    const path = i % 10 < 8 ? (paths[i % 2] as string) : (paths[2 + (i % 3)] as string);
    const traceId = randomBytes(16).toString("hex");
    const req: AccessRequest = {
      id: `req-${i}`,
      method: "GET",
      host: "api.example.com",
      path,
      query: "",
      headers: new Map([
        ["authorization", `Bearer u-${i % 500}`],
        ["user-agent", "bench/1.0"],
        ["x-request-id", `req-${i}`],
      ]),
      clientIp: `203.0.113.${i % 250}`,
      size: -1,
      principal: "",
      sni: "",
      contextExtensions: {},
      metadata: {},
      receivedAt: Date.now(),
    };
    const t = process.hrtime.bigint();
    const decision = await pipeline.evaluate(runtime, req);
    const durationNs = process.hrtime.bigint() - t;
    for (const [set, flag] of [
      ["sampled", "01"],
      ["unsampled", "00"],
      ["untraced", undefined],
    ] as const) {
      const metadata = new grpc.Metadata();
      if (flag) metadata.set("traceparent", `00-${traceId}-00f067aa0ba902b7-${flag}`);
      metadata.set("x-request-id", req.id);
      sets[set].push({ decision, req, traceHeader: metadataHeader(metadata), durationNs });
    }
  }
  return sets;
}

/** An OTLP/HTTP collector stub in its own process: reads each export and answers 200. */
async function startCollector(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `require("node:http").createServer((q, s) => { q.resume(); q.on("end", () => s.writeHead(200, {"content-type": "application/x-protobuf"}).end()); })
        .listen(0, "127.0.0.1", function () { console.log(this.address().port); });`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const port = await new Promise<string>((resolve) =>
    child.stdout.once("data", (d: Buffer) => resolve(d.toString().trim())),
  );
  return { url: `http://127.0.0.1:${port}/v1/traces`, stop: () => child.kill() };
}

interface Variant {
  readonly name: string;
  readonly events: EventSet;
  readonly options: (collector: string) => TelemetryOptions;
}

const OFF: TelemetryOptions = {
  tracing: { enabled: false, subjectAttribute: "hash" },
  metrics: { enabled: false },
  audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
  subjectHashKey: "bench",
};
const tracingOn = (url: string, extra: Partial<TelemetryOptions["tracing"]> = {}) => ({
  ...OFF.tracing,
  enabled: true,
  exporter: { kind: "otlp" as const, protocol: "http/protobuf" as const, url },
  ...extra,
});
const metricsOn = { enabled: true };
const auditOn = (rate = 1) => ({ ...OFF.audit, enabled: true, allowSampleRate: rate });

const VARIANTS: Variant[] = [
  { name: "everything off", events: "sampled", options: () => OFF },
  { name: "metrics", events: "sampled", options: () => ({ ...OFF, metrics: metricsOn }) },
  {
    name: "tracing, caller sampled (OTLP/HTTP protobuf)",
    events: "sampled",
    options: (url) => ({ ...OFF, tracing: tracingOn(url) }),
  },
  {
    name: "tracing, caller did not sample",
    events: "unsampled",
    options: (url) => ({ ...OFF, tracing: tracingOn(url) }),
  },
  {
    name: "tracing, no caller context, 10% of roots sampled",
    events: "untraced",
    options: (url) => ({
      ...OFF,
      tracing: tracingOn(url, { sampler: "traceidratio", samplerRatio: 0.1 }),
    }),
  },
  {
    name: "audit, every decision",
    events: "sampled",
    options: () => ({ ...OFF, audit: auditOn() }),
  },
  {
    name: "audit, 10% of allows",
    events: "sampled",
    options: () => ({ ...OFF, audit: auditOn(0.1) }),
  },
  {
    name: "all on: tracing (sampled) + metrics + audit",
    events: "sampled",
    options: (url) => ({ ...OFF, tracing: tracingOn(url), metrics: metricsOn, audit: auditOn() }),
  },
  {
    name: "all on: tracing (caller did not sample) + metrics + audit",
    events: "unsampled",
    options: (url) => ({ ...OFF, tracing: tracingOn(url), metrics: metricsOn, audit: auditOn() }),
  },
];

/** CPU and wall microseconds per event of one run, export and write work included. */
async function run(
  options: TelemetryOptions,
  events: readonly DecisionEvent[],
): Promise<{ cpuUs: number; wallUs: number }> {
  const audit = options.audit.enabled ? openAuditStream("/dev/null") : undefined;
  const telemetry = createTelemetry(
    { ...options, audit: { ...options.audit, ...(audit ? { destination: audit } : {}) } },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  const cpu = process.cpuUsage();
  const wall = process.hrtime.bigint();
  for (let i = 0; i < EVENTS; i++) {
    telemetry.onDecision(events[i % events.length] as DecisionEvent);
    if (i % TICK === TICK - 1) await new Promise((r) => setImmediate(r));
  }
  await telemetry.flush();
  if (audit) {
    await new Promise((r) => {
      audit.once("close", r);
      audit.end();
    });
  }
  const used = process.cpuUsage(cpu);
  const wallNs = Number(process.hrtime.bigint() - wall);
  await telemetry.shutdown();
  return { cpuUs: (used.user + used.system) / EVENTS, wallUs: wallNs / 1000 / EVENTS };
}

async function main(): Promise<void> {
  const collector = await startCollector();
  try {
    const events = await buildEvents();
    const results: { name: string; cpuUs: number; wallUs: number }[] = [];
    for (const v of VARIANTS) {
      let best = { cpuUs: Number.POSITIVE_INFINITY, wallUs: Number.POSITIVE_INFINITY };
      for (let r = 0; r < ROUNDS; r++) {
        const got = await run(v.options(collector.url), events[v.events]);
        if (got.cpuUs < best.cpuUs) best = got;
      }
      results.push({ name: v.name, ...best });
    }
    const base = results[0] as { cpuUs: number; wallUs: number };
    console.log(
      `\n${EVENTS} events per run, best of ${ROUNDS}; Node ${process.version}; cost over "everything off"\n`,
    );
    console.log("| telemetry | CPU us/decision | wall us/decision | Check/s kept at 60 us/Check |");
    console.log("| --- | ---: | ---: | ---: |");
    for (const r of results) {
      const cost = Math.max(0, r.cpuUs - base.cpuUs);
      const kept = CHECK_US / (CHECK_US + cost);
      console.log(
        `| ${r.name} | ${cost.toFixed(2)} | ${Math.max(0, r.wallUs - base.wallUs).toFixed(2)} | ${(kept * 100).toFixed(1)}% |`,
      );
    }
    console.log(`\nloop baseline: ${base.cpuUs.toFixed(2)} us CPU per event`);
  } finally {
    collector.stop();
  }
}

await main();
