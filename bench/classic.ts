/**
 * `BENCH_ONLY=classic npm run bench`, the method before the outside one: riskgate's Check/s
 * and latency next to a no-op server on the same stack (grpc-js + proto-loader), driven by the
 * same load generator (h2load replaying one serialized CheckRequest over gRPC framing), runs
 * alternated to cancel drift. Rewrites its sections of BENCHMARKS.md and sets a non-zero exit
 * code if any request failed.
 *
 * Scenarios: (a) cached token, memory store; (b) Redis store; (d) tracing (OTLP to a local
 * sink), metrics and audit on; (e) open loop at half of (b)'s maximum (h2load --rps), with the
 * decision time inside the server from its own histogram; (w) (a) with --workers 2; and one
 * request at a time for the latency each adds. (c) needs a different request per call, which
 * h2load cannot send: bench/load.ts drives 10k distinct callers (token, subject, IP) drawn at
 * random, against riskgate and the no-op server alike, then walks 2 x 100k more callers once
 * each to show the server's RSS levelling off. h2load only sees HTTP status, so the servers'
 * own decision counters are read too: any decision but allow counts as a failure.
 * The HTTP rows (bench/http.ts) run last: riskgate's forward-auth listener directly and through
 * nginx with auth_request (the shipped config), against a plain nginx, over HTTP/1.1 (h2load --h1).
 * Needs h2load (Debian: nghttp2-client), redis-server and nginx.
 * Env: see bench/run.ts. BENCH_ONLY=http (only the HTTP rows; rewrites only the
 * "## HTTP forward-auth" section of BENCHMARKS.md), BENCH_ONLY=webhook (only the scoring webhook
 * rows, bench/webhook.ts; rewrites only their section, needs neither h2load nor nginx).
 * (a), (b), (d), (w) and the light-load rows are superseded by the outside method
 * (bench/outside.ts), which measures the shipped policy's signals with a verified token.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describeResponse } from "../src/cli/check.js";
import { createClient } from "../src/cli/client.js";
import { freePort } from "../test/helpers/free-port.js";
import {
  children,
  cli,
  h2load as h2loadRun,
  PIN,
  pinSelf,
  requireTool,
  rewriteSection,
  start,
  startRedis,
  work,
} from "./harness.js";
import { findNginx, type HttpBenchResult, httpBench } from "./http.js";
import { closedLoop, quantileMs } from "./load.js";
import { type WebhookBenchResult, webhookBench } from "./webhook.js";
import {
  benchEnv,
  benchKeys,
  benchRequest,
  benchToken,
  grpcFrame,
  SINGLE,
  serialize,
  subjectAt,
} from "./workload.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 16);
const SUBJECTS = Number(process.env.BENCH_SUBJECTS ?? 100_000);
const HTTP_CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 32);
/** The heading of the classic closed-loop section of BENCHMARKS.md. */
export const CLASSIC_HEADING = "\n## Closed loop, bench policy (the method before the outside one)";
const DISTINCT = 10_000;
/**
 * Streams per connection for (c) and the RSS passes: each first-seen token costs a signature
 * verification (about 0.3 ms of CPU), and 128 Checks in flight behind a burst of them outlast
 * the policy's 100 ms time budget; 32 in flight still saturate the server.
 */
/** The V8 old-space cap of k8s/base/deployment.yaml (NODE_OPTIONS). */
const K8S_HEAP_MIB = 384;
const SPREAD_STREAMS = Number(process.env.BENCH_SPREAD_STREAMS ?? 4);
/** Resident set size of a process (Linux /proc) and its V8 heap in use (its metrics), MiB. */
async function memoryMiB(pid: number, metricsPort: number): Promise<{ rss: number; heap: number }> {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const heap = /^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1];
  return { rss: Number(kb ?? 0) / 1024, heap: Number(heap ?? 0) / 2 ** 20 };
}

/** Framed CheckRequests for callers `from`..`to`-1, each with its own token and IP. */
async function callers(keys: Awaited<ReturnType<typeof benchKeys>>, from: number, to: number) {
  const out: Buffer[] = [];
  for (let n = from; n < to; n++) {
    const who = subjectAt(n);
    out.push(grpcFrame(serialize(benchRequest(await benchToken(keys, who), who))));
  }
  return out;
}

interface Run {
  scenario: string;
  rps: number;
  /** The no-op server's Check/s under the same generator, when it is not h2load's. */
  baseline?: number;
  failed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * One h2load run. Closed loop with CLIENTS x STREAMS by default; `load.rps` makes it an open
 * loop (h2load --rps per connection, one stream each); `load.light` is one request at a time.
 */
function h2load(
  scenario: string,
  port: number,
  body: string,
  seconds: number,
  load: { rps?: number; light?: boolean } = {},
): Run {
  const { answered: _answered, ...run } = h2loadRun(scenario, port, body, seconds, {
    clients: CLIENTS,
    streams: STREAMS,
    ...load,
  });
  return run;
}

/**
 * riskgate_decision_duration_seconds between two scrapes: how many decisions, each quantile as
 * the upper bound of its histogram bucket (ms), and the share decided in under 1 ms.
 */
async function decisionQuantiles(metricsPort: number, before: Map<number, number>) {
  const after = await scrapeBuckets(metricsPort);
  const deltas = [...after]
    .map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = deltas.at(-1)?.[1] ?? 0;
  const ms = (q: number) => (deltas.find(([, n]) => n >= q * total)?.[0] ?? Infinity) * 1000;
  const underMs = (deltas.find(([le]) => le === 0.001)?.[1] ?? 0) / Math.max(1, total);
  return { total, p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), underMs };
}

type Inside = Awaited<ReturnType<typeof decisionQuantiles>>;
const insideText = (d: Inside) =>
  `p50 ≤ ${d.p50} ms, p90 ≤ ${d.p90} ms, **p99 ≤ ${d.p99} ms**, ${(d.underMs * 100).toFixed(1)}% under 1 ms (${d.total} decisions)`;

/** A counter's samples by their `outcome` label, from a server's metrics. */
async function scrapeCounter(metricsPort: number, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{outcome="([^"]+)"\\} (\\d+)`, "gm"))) {
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

/** EVALSHA + EVAL calls Redis has served (INFO commandstats): riskgate's round trips. */
async function scriptCalls(port: number): Promise<number> {
  const client = new Redis({ port, lazyConnect: true });
  try {
    await client.connect();
    const info = await client.info("commandstats");
    return [...info.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  } finally {
    client.disconnect();
  }
}

/** Decisions by outcome so far, from a server's metrics. */
async function scrapeDecisions(metricsPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/riskgate_decisions_total\{decision="([^"]+)"[^}]*\} (\d+)/g)) {
    out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  }
  return out;
}

async function scrapeBuckets(metricsPort: number): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const sums = new Map<number, number>();
  for (const m of text.matchAll(
    /riskgate_decision_duration_seconds_bucket\{le="([^"]+)",decision="[^"]+"\} (\d+)/g,
  )) {
    const le = m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]);
    sums.set(le, (sums.get(le) ?? 0) + Number(m[2]));
  }
  return sums;
}

/** The HTTP rows (bench/http.ts), with riskgate and the no-op HTTP server started as above. */
async function httpRows(
  keys: Awaited<ReturnType<typeof benchKeys>>,
  base: Record<string, string>,
  grpcMemory?: number,
): Promise<HttpBenchResult> {
  const nginx = findNginx();
  if (nginx === undefined) {
    process.stderr.write("bench needs nginx: apt-get install nginx-light (or nginx)\n");
    process.exit(2);
  }
  return httpBench(nginx, {
    work,
    pin: PIN,
    seconds: SECONDS,
    rounds: ROUNDS,
    connections: HTTP_CONNECTIONS,
    token: await benchToken(keys, SINGLE),
    children,
    riskgate: async (name, env) =>
      Number(
        (
          await start(
            name,
            [cli, "serve", "--address", "127.0.0.1:0"],
            { ...base, RISKGATE_HTTP_ADDRESS: "127.0.0.1:0", ...env },
            /"http_port":(\d+)/,
          )
        ).match,
      ),
    noopHttp: async () =>
      Number(
        (
          await start(
            "noop-http",
            [new URL("./noop-http-server.js", import.meta.url).pathname, "0"],
            {},
            /listening (\d+)/,
          )
        ).match,
      ),
    freePort,
    decisions: scrapeDecisions,
    ...(grpcMemory === undefined ? {} : { grpcMemory }),
  });
}

/** The scoring webhook rows (bench/webhook.ts): riskgate with a webhook at 5 and 50 ms. */
async function webhookRows(
  keys: Awaited<ReturnType<typeof benchKeys>>,
  base: Record<string, string>,
): Promise<WebhookBenchResult> {
  return webhookBench({
    work,
    seconds: SECONDS,
    connections: CLIENTS,
    streams: STREAMS,
    body: grpcFrame(serialize(benchRequest(await benchToken(keys, SINGLE), SINGLE))),
    riskgate: async (name, env) =>
      Number(
        (
          await start(
            name,
            [cli, "serve", "--address", "127.0.0.1:0"],
            { ...base, ...env },
            /"port":(\d+)[^\n]*"msg":"riskgate serving"/,
          )
        ).match,
      ),
    freePort,
  });
}

/** BENCH_ONLY=webhook: the webhook rows alone; only their section of BENCHMARKS.md is rewritten. */
export async function onlyWebhook(): Promise<void> {
  pinSelf();
  const keysDir = join(work, "keys");
  const webhook = await webhookRows(await benchKeys(keysDir), benchEnv(keysDir));
  rewriteSection("\n## Scoring webhook", webhook.markdown);
  if (webhook.failed > 0) {
    process.stderr.write(`${webhook.failed} webhook-row Checks failed or were not allowed\n`);
    process.exitCode = 1;
  }
}

/** BENCH_ONLY=http: the HTTP rows alone; only their section of BENCHMARKS.md is rewritten. */
export async function onlyHttp(): Promise<void> {
  requireTool("h2load", "nghttp2-client");
  pinSelf();
  const keysDir = join(work, "keys");
  const http = await httpRows(await benchKeys(keysDir), benchEnv(keysDir));
  rewriteSection("\n## HTTP forward-auth", http.markdown);
  if (http.failed > 0) {
    process.stderr.write(`${http.failed} HTTP requests failed or were not allowed\n`);
    process.exitCode = 1;
  }
}

/**
 * The whole classic run; rewrites its three sections of BENCHMARKS.md (the closed-loop table,
 * HTTP forward-auth, scoring webhook).
 */
export async function classicBench(): Promise<void> {
  requireTool("h2load", "nghttp2-client");
  requireTool("redis-server", "redis-server");
  // every thread of this process (and so h2load, its child) on core 1
  pinSelf();

  const redisPort = await freePort();
  // Redis may run on either core: on core 1 alone h2load starves it, and the Redis-store
  // server's calls time out into its failure mode
  await startRedis(redisPort);
  // an OTLP/HTTP sink, so tracing pays for building and exporting spans, not for a dead endpoint
  let spansReceived = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      spansReceived++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const sinkPort = (sink.address() as { port: number }).port;

  const keysDir = join(work, "keys");
  const base = benchEnv(keysDir);
  const keys = await benchKeys(keysDir);
  const request = benchRequest(await benchToken(keys, SINGLE), SINGLE);
  const message = serialize(request);
  const body = join(work, "check.bin");
  writeFileSync(body, grpcFrame(message));

  const servingPort = /"port":(\d+)[^\n]*"msg":"riskgate serving"/;
  const noop = Number(
    (
      await start(
        "noop",
        [new URL("./noop-server.js", import.meta.url).pathname, "0"],
        {},
        /listening (\d+)/,
      )
    ).match,
  );
  const launch = (name: string, env: Record<string, string>, extra: string[] = [], cores = "0") =>
    start(
      name,
      [cli, "serve", "--address", "127.0.0.1:0", ...extra],
      { ...base, ...env },
      servingPort,
      cores,
    );
  const serve = (name: string, env: Record<string, string>, extra: string[] = [], cores = "0") =>
    launch(name, env, extra, cores).then((s) => Number(s.match));
  const memory = await serve("memory", {});
  const metricsPort = await freePort();
  const withRedis = await serve("redis", {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    RISKGATE_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
  });
  const observed = await serve("telemetry", {
    RISKGATE_METRICS_ADDRESS: "127.0.0.1:0",
    RISKGATE_AUDIT: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
    OTEL_TRACES_SAMPLER: "parentbased_always_on",
  });
  // two workers get both cores (h2load keeps running on core 1 beside them)
  const workers = await serve("workers", {}, ["--workers", "2"], "0,1");
  const manyMetrics = await freePort();
  // (c)'s server runs with the V8 heap cap k8s/base gives riskgate, so the memory line says
  // whether the caps fit it
  const many = await launch("many", {
    RISKGATE_METRICS_ADDRESS: `127.0.0.1:${manyMetrics}`,
    NODE_OPTIONS: `--max-old-space-size=${K8S_HEAP_MIB}`,
  });

  // every server must answer the benchmark request with an allow, or the numbers mean nothing
  const servers = { memory, withRedis, observed, workers, many: Number(many.match) };
  for (const [name, port] of Object.entries(servers)) {
    const client = createClient(`127.0.0.1:${port}`);
    const view = describeResponse(await client.check(request));
    client.close();
    if (view.decision !== "allow")
      throw new Error(`${name}: bench request got ${view.decision} ${view.body}`);
  }

  const targets: [string, number][] = [
    ["no-op grpc-js", noop],
    ["(a) riskgate, memory store", memory],
    ["(b) riskgate, Redis store", withRedis],
    ["(d) riskgate, tracing + metrics + audit", observed],
    ["(w) riskgate, memory, --workers 2", workers],
  ];
  for (const [name, port] of targets) h2load(`warm ${name}`, port, body, 2);
  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, port] of targets) runs.push(h2load(name, port, body, SECONDS));
  }
  const best = (name: string) =>
    runs.filter((r) => r.scenario === name).sort((a, b) => b.rps - a.rps)[0] as Run;
  const noopBest = best("no-op grpc-js");
  const redisBest = best("(b) riskgate, Redis store");
  const openRate = Math.max(CLIENTS, Math.floor(redisBest.rps / 2));
  const perConnection = Math.floor(openRate / CLIENTS);
  const before = await scrapeBuckets(metricsPort);
  const open = h2load("(e) riskgate, Redis, open loop at half of (b)", withRedis, body, SECONDS, {
    rps: perConnection,
  });
  const inside = await decisionQuantiles(metricsPort, before);
  const noopOpen = h2load("(e) no-op, same open loop", noop, body, SECONDS, { rps: perConnection });
  // the same open loop on the memory store: the decision without a network round trip
  const manyBefore = await scrapeBuckets(manyMetrics);
  const openMemory = h2load(
    "(e) riskgate, memory store, same open loop",
    Number(many.match),
    body,
    SECONDS,
    { rps: perConnection },
  );
  const insideMemory = await decisionQuantiles(manyMetrics, manyBefore);
  runs.push(open, openMemory, noopOpen);
  for (const [name, port] of targets.slice(0, 3)) {
    runs.push(h2load(`light load, one request at a time: ${name}`, port, body, 4, { light: true }));
  }

  // (c) many callers: a different token, subject and IP per caller, drawn at random
  const manyPort = Number(many.match);
  const distinctBodies = await callers(keys, 0, DISTINCT);
  const spread = (port: number) =>
    closedLoop({
      port,
      bodies: distinctBodies,
      connections: CLIENTS,
      streams: SPREAD_STREAMS,
      seconds: SECONDS,
      order: "random",
    });
  const asRun = (
    scenario: string,
    r: Awaited<ReturnType<typeof closedLoop>>,
    baseline?: number,
  ) => ({
    scenario,
    rps: r.requests / r.seconds,
    ...(baseline === undefined ? {} : { baseline }),
    failed: r.failed,
    p50: quantileMs(r.micros, 0.5),
    p90: quantileMs(r.micros, 0.9),
    p99: quantileMs(r.micros, 0.99),
    max: quantileMs(r.micros, 1),
  });
  type Memory = Awaited<ReturnType<typeof memoryMiB>>;
  const rss: [string, Memory][] = [
    ["started, one caller served", await memoryMiB(many.pid, manyMetrics)],
  ];
  const noopSpread = await spread(noop);
  const manySpread = await spread(manyPort);
  const noopSpreadRps = noopSpread.requests / noopSpread.seconds;
  runs.push(
    asRun(`(c) no-op, ${DISTINCT} distinct callers (bench/load.ts)`, noopSpread, noopSpreadRps),
    asRun(
      `(c) riskgate, memory store, ${DISTINCT} distinct callers (bench/load.ts)`,
      manySpread,
      noopSpreadRps,
    ),
  );
  const verified = await scrapeCounter(manyMetrics, "riskgate_token_verifications_total");
  rss.push([`after (c): ${manySpread.distinct} callers`, await memoryMiB(many.pid, manyMetrics)]);
  // RSS with many more subjects: each new caller once, in two passes
  let walked = 0;
  for (let pass = 0; pass < 2; pass++) {
    const from = DISTINCT + pass * SUBJECTS;
    const bodies = await callers(keys, from, from + SUBJECTS);
    const r = await closedLoop({
      port: manyPort,
      bodies,
      connections: CLIENTS,
      streams: SPREAD_STREAMS,
      seconds: 600,
      maxRequests: SUBJECTS,
      order: "sequential",
    });
    walked += r.requests;
    runs.push({
      ...asRun(`RSS pass ${pass + 1}: ${SUBJECTS} new callers, once each`, r),
      baseline: noopSpreadRps,
    });
    rss.push([
      `after ${manySpread.distinct + walked} distinct callers`,
      await memoryMiB(many.pid, manyMetrics),
    ]);
  }

  const redisDecisions = await scrapeDecisions(metricsPort);
  const scripts = await scriptCalls(redisPort);
  const redisChecks = Object.values(redisDecisions).reduce((n, v) => n + v, 0);
  const manyDecisions = await scrapeDecisions(manyMetrics);
  const notAllowed = [redisDecisions, manyDecisions]
    .flatMap((d) => Object.entries(d))
    .filter(([k]) => k !== "allow")
    .reduce((n, [, v]) => n + v, 0);
  // the HTTP rows, on the same pinning, after the gRPC rows
  const http = await httpRows(keys, base, best("(a) riskgate, memory store").rps);
  const webhook = await webhookRows(keys, base);
  const fmt = (n: number) => n.toFixed(2);
  const rows = runs.map(
    (r) =>
      `| ${r.scenario} | ${r.rps.toFixed(0)} | ${((r.rps / (r.baseline ?? noopBest.rps)) * 100).toFixed(0)}% | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${r.failed} |`,
  );
  const ratio = (name: string) => ((best(name).rps / noopBest.rps) * 100).toFixed(0);
  const summary = [
    `- (a) memory store: **${ratio("(a) riskgate, memory store")}%** of the no-op server (${best("(a) riskgate, memory store").rps.toFixed(0)} vs ${noopBest.rps.toFixed(0)} Check/s); target for (b) is 70%.`,
    `- (b) Redis store: **${ratio("(b) riskgate, Redis store")}%** of the no-op server; its decisions: ${JSON.stringify(redisDecisions)} (anything but allow is a failure: store timeouts answered by the failure mode).`,
    `- (d) tracing + metrics + audit on: ${best("(d) riskgate, tracing + metrics + audit").rps.toFixed(0)} Check/s vs (a) ${best("(a) riskgate, memory store").rps.toFixed(0)} (${spansReceived} OTLP export requests received by the sink).`,
    `- (e) open loop at ${perConnection * CLIENTS} Check/s (half of (b)), decision time inside the server by histogram bucket (target p99 < 1 ms): Redis store ${insideText(inside)}; memory store ${insideText(insideMemory)}. Client p99 ${fmt(open.p99)} ms against ${fmt(noopOpen.p99)} ms for the no-op server under the same h2load --rps pattern (target < 5 ms): on this VM, idle-core wake-ups and h2load's per-connection bursts dominate open-loop client latency, so compare the two rows rather than read either alone; the light-load rows show the added time per request.`,
    `- (c) ${DISTINCT} distinct callers at random: ${manySpread.distinct} callers sent, ${((manySpread.requests / manySpread.seconds / noopSpreadRps) * 100).toFixed(0)}% of the no-op server under the same generator (bench/load.ts, a node:http2 client; h2load cannot vary the body). Token signature verifications: ${verified.ok ?? 0} ok, ${verified.error ?? 0} refused, over ${manySpread.requests} Checks carrying ${manySpread.distinct + 1} distinct tokens (the callers' plus the readiness check's); target at most one per distinct token while cached: **${(verified.ok ?? 0) + (verified.error ?? 0) <= manySpread.distinct + 1 ? "met" : "NOT met"}**. Decisions: ${JSON.stringify(manyDecisions)}.`,
    `- Memory of the memory-store server (token cache 50k entries, store 200k keys, geo cache 10k; --max-old-space-size=${K8S_HEAP_MIB} as in k8s/base), RSS / V8 heap in use: ${rss.map(([when, m]) => `${m.rss.toFixed(0)} / ${m.heap.toFixed(0)} MiB ${when}`).join("; ")}.`,
    `- Redis round trips: ${scripts} script calls (EVALSHA/EVAL, Redis INFO commandstats) for ${redisChecks} decisions of the Redis-store server: ${(scripts / Math.max(1, redisChecks)).toFixed(3)} per Check.`,
    `- (w) 2 workers vs 1: ${best("(w) riskgate, memory, --workers 2").rps.toFixed(0)} vs ${best("(a) riskgate, memory store").rps.toFixed(0)} Check/s, x${(best("(w) riskgate, memory, --workers 2").rps / best("(a) riskgate, memory store").rps).toFixed(2)} (the 2 workers share the 2 cores with h2load).`,
  ];
  const met = (ok: boolean) => (ok ? "met" : "**NOT met**");
  const redisRatio = best("(b) riskgate, Redis store").rps / noopBest.rps;
  const verdicts = [
    "Targets:",
    `- (b) >= 70% of the no-op server: ${(redisRatio * 100).toFixed(0)}%, ${met(redisRatio >= 0.7)}.`,
    `- (e) client p99 < 5 ms: ${fmt(open.p99)} ms, ${met(open.p99 < 5)}; decision p99 inside the server < 1 ms: ≤ ${inside.p99} ms, ${met(inside.p99 <= 1)}.`,
    `- (c) at most one verification per distinct token while cached: ${met((verified.ok ?? 0) + (verified.error ?? 0) <= manySpread.distinct + 1)}; memory with ${2 * SUBJECTS + manySpread.distinct} distinct callers: see the memory line.`,
    `- one Redis round trip per Check: ${met(scripts <= redisChecks)}.`,
  ];
  const table = [
    `Machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`,
    `Load: h2load -t 1, ${CLIENTS} connections x ${STREAMS} streams, ${SECONDS} s a run, ${ROUNDS} alternating rounds, one ${message.length}-byte CheckRequest (cached ES256 token, enterprise tier, embedded geo, all signals of bench/policy.yaml on). Latencies are at the client; closed loop except (e). The (c) and RSS rows are driven by bench/load.ts (${CLIENTS} connections x ${SPREAD_STREAMS} streams) and compared with the no-op server under that generator.`,
    "",
    "| scenario | Check/s | of no-op | p50 ms | p90 ms | p99 ms | max ms | failed |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    ...summary,
    "",
    ...verdicts,
  ].join("\n");
  rewriteSection(
    CLASSIC_HEADING,
    `${CLASSIC_HEADING.trim()}\n\nProduced by \`BENCH_ONLY=classic npm run bench\` on ${new Date().toISOString().slice(0, 10)}. Numbers on this 2-core machine are noisy (±15%).${PIN ? " Servers ran pinned to core 0 (--workers 2 on both cores), h2load and bench/load.ts to core 1, Redis to either core." : ""} Rows (a), (b), (d), (w) and the light-load rows are superseded by the outside method above.\n\n${table}`,
  );
  rewriteSection("\n## HTTP forward-auth", http.markdown);
  rewriteSection("\n## Scoring webhook", webhook.markdown);
  const failed = runs.reduce((n, r) => n + r.failed, 0) + notAllowed + http.failed + webhook.failed;
  if (failed > 0) {
    process.stderr.write(`${failed} requests failed\n`);
    process.exitCode = 1;
  }
  sink.close();
}
