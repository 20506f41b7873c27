/**
 * The scoring webhook rows: riskgate's Check/s and client p99 when every Check of the bench
 * request's route asks a fraud-scoring service that answers after 5 ms and after 50 ms, next to
 * the same server's route with the webhook off. The service is a node:http server in the
 * generator's process (a timer per call, so it costs that process little); its answer cache is
 * off (`ttl_seconds: 0`), so every Check makes a call: the worst case. With a closed loop, 50 ms
 * of service latency caps Check/s at the Checks in flight / 0.05 s (Little's law), so the 50 ms
 * row shows that the wait is asynchronous (throughput follows concurrency, not the CPU) and
 * what it adds to p99. The light-load rows send one Check at a time: what one call adds, without
 * the queueing a saturated closed loop puts in front of every call (which times calls out and
 * opens the breaker: then the route's failure mode answers, as configured).
 */
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { closedLoop, quantileMs } from "./load.js";
import { BENCH_POLICY } from "./workload.js";

export interface WebhookBenchDeps {
  readonly work: string;
  readonly seconds: number;
  readonly connections: number;
  readonly streams: number;
  /** The framed CheckRequest of the bench (GET /v1/items, route api-read). */
  readonly body: Buffer;
  /** Starts riskgate with these extra settings; resolves to its gRPC port. */
  riskgate(name: string, env: Record<string, string>): Promise<number>;
  freePort(): Promise<number>;
}

export interface WebhookRow {
  readonly scenario: string;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly failed: number;
  /** Calls the scoring service answered during the run. */
  readonly calls: number;
  /** Decisions by outcome and webhook asks by outcome, from the server's metrics. */
  readonly decisions: Record<string, number>;
  readonly webhook: Record<string, number>;
}

export interface WebhookBenchResult {
  readonly rows: readonly WebhookRow[];
  readonly failed: number;
  readonly markdown: string;
}

/** The service latencies the rows measure, in ms. */
const LATENCIES = [5, 50];

export async function webhookBench(deps: WebhookBenchDeps): Promise<WebhookBenchResult> {
  let delayMs = 0;
  let calls = 0;
  const service = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      calls++;
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" }).end('{"score":5}');
      }, delayMs);
    });
  });
  // keep-alive connections outlive a run: as Node's fetch pools them
  service.keepAliveTimeout = 60_000;
  service.listen(0, "127.0.0.1");
  await once(service, "listening");
  const url = `http://127.0.0.1:${(service.address() as AddressInfo).port}/score`;
  try {
    const policy = join(deps.work, "webhook-policy.yaml");
    writeFileSync(policy, webhookPolicy(readFileSync(BENCH_POLICY, "utf8"), url));
    const serve = async (name: string, env: Record<string, string>) => {
      const metrics = await deps.freePort();
      const port = await deps.riskgate(name, {
        ...env,
        RISKGATE_METRICS_ADDRESS: `127.0.0.1:${metrics}`,
      });
      return { port, metrics };
    };
    const off = await serve("webhook-off", {});
    const on = await serve("webhook-on", { RISKGATE_POLICY: policy });
    const run = async (
      scenario: string,
      { port, metrics }: { port: number; metrics: number },
      light = false,
    ): Promise<WebhookRow> => {
      const before = calls;
      const decisionsBefore = await counter(metrics, "riskgate_decisions_total", "decision");
      const webhookBefore = await counter(metrics, "riskgate_webhook_calls_total", "outcome");
      const r = await closedLoop({
        port,
        bodies: [deps.body],
        // light: one Check at a time, so the row shows the time the call adds, not queueing
        connections: light ? 1 : deps.connections,
        streams: light ? 1 : deps.streams,
        seconds: light ? Math.min(5, deps.seconds) : deps.seconds,
        order: "sequential",
      });
      return {
        scenario,
        rps: r.requests / r.seconds,
        p50: quantileMs(r.micros, 0.5),
        p99: quantileMs(r.micros, 0.99),
        failed: r.failed,
        calls: calls - before,
        decisions: since(
          decisionsBefore,
          await counter(metrics, "riskgate_decisions_total", "decision"),
        ),
        webhook: since(
          webhookBefore,
          await counter(metrics, "riskgate_webhook_calls_total", "outcome"),
        ),
      };
    };
    const rows: WebhookRow[] = [await run("webhook off (route does not ask)", off)];
    for (const ms of LATENCIES) {
      delayMs = ms;
      rows.push(await run(`webhook on, service answers in ${ms} ms`, on));
    }
    rows.push(await run("light load, one Check at a time: webhook off", off, true));
    for (const ms of LATENCIES) {
      delayMs = ms;
      rows.push(
        await run(`light load, one Check at a time: service answers in ${ms} ms`, on, true),
      );
    }
    // a Check the server denied is an OK gRPC call: the decision counters tell
    const notAllowed = rows.reduce(
      (n, r) =>
        n + Object.entries(r.decisions).reduce((m, [k, v]) => m + (k === "allow" ? 0 : v), 0),
      0,
    );
    return {
      rows,
      failed: rows.reduce((n, r) => n + r.failed, 0) + notAllowed,
      markdown: markdownOf(deps, rows),
    };
  } finally {
    service.closeAllConnections();
    service.close();
  }
}

/** A counter's samples summed by one label, from a server's metrics. */
async function counter(port: number, name: string, label: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"[^}]*\\} (\\d+)`, "gm");
  for (const m of text.matchAll(re))
    out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  return out;
}

function since(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after))
    if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** bench/policy.yaml with its read route asking a webhook that answers `{"score":5}` (0 points). */
export function webhookPolicy(base: string, url: string): string {
  const doc = parseDocument(base);
  const routes = doc.get("routes") as YAMLSeq<YAMLMap> | undefined;
  const read = routes?.items.find((r) => r.get("name") === "api-read");
  if (read === undefined) throw new Error('bench/policy.yaml has no route named "api-read"');
  read.set("scoring_webhook", true);
  doc.setIn(["signals", "scoring_webhook"], {
    enabled: true,
    url,
    timeout_ms: 80,
    cache: { ttl_seconds: 0 },
  });
  doc.setIn(["failure", "budget_ms"], 150);
  return doc.toString();
}

const show = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "-";

function markdownOf(deps: WebhookBenchDeps, rows: readonly WebhookRow[]): string {
  const fmt = (n: number) => n.toFixed(2);
  return [
    "## Scoring webhook",
    "",
    `Load: bench/load.ts, ${deps.connections} connections x ${deps.streams} streams, ${deps.seconds} s a run, the bench CheckRequest (route api-read). The service is a local node:http server with a fixed delay; the answer cache is off, so every Check calls it.`,
    "",
    "| scenario | Check/s | p50 ms | p99 ms | service calls | decisions | webhook asks | failed |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.rps.toFixed(0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.calls} | ${show(r.decisions)} | ${show(r.webhook)} | ${r.failed} |`,
    ),
    "",
  ].join("\n");
}
