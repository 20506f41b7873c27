/**
 * `npm run bench`: riskgate's Check/s and latency next to a no-op server on the same stack
 * (grpc-js + proto-loader), driven by the same load generator (h2load replaying one serialized
 * CheckRequest over gRPC framing), runs alternated to cancel drift. Writes BENCHMARKS.md and
 * exits non-zero if any request failed.
 *
 * Scenarios: (a) cached token, memory store; (b) Redis store; (d) tracing (OTLP to a local
 * sink), metrics and audit on; (e) open loop at half of (b)'s maximum (h2load --rps), with the
 * decision time inside the server from its own histogram; (w) (a) with --workers 2; and one
 * request at a time for the latency each adds. (c) needs a different request per call, which
 * h2load cannot send: bench/load.ts drives 10k distinct callers (token, subject, IP) drawn at
 * random, against riskgate and the no-op server alike, then walks 2 x 100k more callers once
 * each to show the server's RSS levelling off. h2load only sees HTTP status, so the servers'
 * own decision counters are read too: any decision but allow counts as a failure.
 * Needs h2load (Debian: nghttp2-client) and redis-server.
 * Env: BENCH_SECONDS (10), BENCH_ROUNDS (2), BENCH_CLIENTS (8), BENCH_STREAMS (16),
 * BENCH_SUBJECTS (100000: callers per RSS pass).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { describeResponse } from "../src/cli/check.js";
import { createClient } from "../src/cli/client.js";
import { closedLoop, quantileMs } from "./load.js";
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
const DISTINCT = 10_000;
const work = mkdtempSync(join(tmpdir(), "riskgate-bench-"));
const children: ChildProcess[] = [];
const cli = new URL("../src/cli/main.js", import.meta.url).pathname;

function requireTool(cmd: string, pkg: string): void {
  try {
    execFileSync(cmd, ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write(`bench needs ${cmd}: apt-get install ${pkg}\n`);
    process.exit(2);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Starts a child whose stdout goes to a file; resolves once `ready` matches the file. */
async function start(
  name: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ match: string; pid: number }> {
  const log = join(work, `${name}.log`);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", openSync(log, "w"), "inherit"],
  });
  children.push(child);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = readFileSync(log, "utf8");
    const m = ready.exec(text);
    if (m) return { match: m[1] ?? "", pid: child.pid ?? 0 };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${name} did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resident set size of a process, MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? 0) / 1024;
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
  const shape = load.light
    ? ["-c", "1", "-m", "1"]
    : load.rps !== undefined
      ? ["-c", String(CLIENTS), "-m", "1", "--rps", String(load.rps)]
      : ["-c", String(CLIENTS), "-m", String(STREAMS)];
  const log = join(work, `${scenario.replace(/\W+/g, "_")}.h2load.log`);
  const out = execFileSync(
    "h2load",
    [
      ...["-D", String(seconds), "-t", "1", ...shape],
      ...["-d", body, "--log-file", log],
      ...["-H", "content-type: application/grpc", "-H", "te: trailers"],
      `http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`,
    ],
    { encoding: "utf8" },
  );
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const failed = Number(/\d+ succeeded, (\d+) failed, (\d+) errored/.exec(out)?.[1] ?? 0);
  const micros = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((l) => Number(l.split("\t")[2]))
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  const q = (p: number) =>
    (micros[Math.min(micros.length - 1, Math.floor(p * micros.length))] ?? 0) / 1000;
  return { scenario, rps, failed, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
}

/** Quantile of riskgate_decision_duration_seconds between two scrapes (upper bucket bound). */
async function decisionQuantile(metricsPort: number, before: Map<number, number>, q: number) {
  const after = await scrapeBuckets(metricsPort);
  const deltas = [...after]
    .map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = deltas.at(-1)?.[1] ?? 0;
  const hit = deltas.find(([, n]) => n >= q * total);
  return { total, seconds: hit?.[0] ?? Number.POSITIVE_INFINITY };
}

/** A counter's samples by their `outcome` label, from a server's metrics. */
async function scrapeCounter(metricsPort: number, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{outcome="([^"]+)"\\} (\\d+)`, "gm"))) {
    out[m[1] as string] = Number(m[2]);
  }
  return out;
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

async function main(): Promise<void> {
  requireTool("h2load", "nghttp2-client");
  requireTool("redis-server", "redis-server");

  const redisPort = await freePort();
  const redis = spawn(
    "redis-server",
    ["--port", String(redisPort), "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  children.push(redis);
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
  const launch = (name: string, env: Record<string, string>, extra: string[] = []) =>
    start(
      name,
      [cli, "serve", "--address", "127.0.0.1:0", ...extra],
      { ...base, ...env },
      servingPort,
    );
  const serve = (name: string, env: Record<string, string>, extra: string[] = []) =>
    launch(name, env, extra).then((s) => Number(s.match));
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
  const workers = await serve("workers", {}, ["--workers", "2"]);
  const manyMetrics = await freePort();
  const many = await launch("many", { RISKGATE_METRICS_ADDRESS: `127.0.0.1:${manyMetrics}` });

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
  const inside = await decisionQuantile(metricsPort, before, 0.99);
  const noopOpen = h2load("(e) no-op, same open loop", noop, body, SECONDS, { rps: perConnection });
  runs.push(open, noopOpen);
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
      streams: STREAMS,
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
  const rss: [string, number][] = [["started, one caller served", rssMiB(many.pid)]];
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
  rss.push([`after (c): ${manySpread.distinct} callers`, rssMiB(many.pid)]);
  // RSS with many more subjects: each new caller once, in two passes
  let walked = 0;
  for (let pass = 0; pass < 2; pass++) {
    const from = DISTINCT + pass * SUBJECTS;
    const bodies = await callers(keys, from, from + SUBJECTS);
    const r = await closedLoop({
      port: manyPort,
      bodies,
      connections: CLIENTS,
      streams: STREAMS,
      seconds: 600,
      maxRequests: SUBJECTS,
      order: "sequential",
    });
    walked += r.requests;
    runs.push({
      ...asRun(`RSS pass ${pass + 1}: ${SUBJECTS} new callers, once each`, r),
      baseline: noopSpreadRps,
    });
    rss.push([`after ${manySpread.distinct + walked} distinct callers`, rssMiB(many.pid)]);
  }

  const redisDecisions = await scrapeDecisions(metricsPort);
  const manyDecisions = await scrapeDecisions(manyMetrics);
  const notAllowed = [redisDecisions, manyDecisions]
    .flatMap((d) => Object.entries(d))
    .filter(([k]) => k !== "allow")
    .reduce((n, [, v]) => n + v, 0);
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
    `- (e) open loop at ${perConnection * CLIENTS} Check/s (half of (b)): decision p99 inside the server **≤ ${(inside.seconds * 1000).toFixed(2)} ms** (histogram bucket bound, ${inside.total} decisions; target < 1 ms). Client p99 ${fmt(open.p99)} ms against ${fmt(noopOpen.p99)} ms for the no-op server under the same h2load --rps pattern (target < 5 ms): on this VM, idle-core wake-ups and h2load's per-connection bursts dominate open-loop client latency, so compare the two rows rather than read either alone; the light-load rows show the added time per request.`,
    `- (c) ${DISTINCT} distinct callers at random: ${manySpread.distinct} callers sent, ${((manySpread.requests / manySpread.seconds / noopSpreadRps) * 100).toFixed(0)}% of the no-op server under the same generator (bench/load.ts, a node:http2 client; h2load cannot vary the body). Token signature verifications: ${verified.ok ?? 0} ok, ${verified.error ?? 0} refused, over ${manySpread.requests} Checks from ${manySpread.distinct} distinct tokens (target: at most one per distinct token while cached). Decisions: ${JSON.stringify(manyDecisions)}.`,
    `- RSS of the memory-store server (token cache 50k entries, store 200k keys, geo cache 10k): ${rss.map(([when, mib]) => `${mib.toFixed(0)} MiB ${when}`).join("; ")}.`,
    `- (w) 2 workers vs 1: ${best("(w) riskgate, memory, --workers 2").rps.toFixed(0)} vs ${best("(a) riskgate, memory store").rps.toFixed(0)} Check/s (h2load takes one of the 2 cores).`,
  ];
  const table = [
    `Machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`,
    `Load: h2load -t 1, ${CLIENTS} connections x ${STREAMS} streams, ${SECONDS} s a run, ${ROUNDS} alternating rounds, one ${message.length}-byte CheckRequest (cached ES256 token, enterprise tier, embedded geo, all signals of bench/policy.yaml on). Latencies are at the client; closed loop except (e). The (c) and RSS rows are driven by bench/load.ts and compared with the no-op server under that generator.`,
    "",
    "| scenario | Check/s | of no-op | p50 ms | p90 ms | p99 ms | max ms | failed |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    ...summary,
  ].join("\n");
  process.stdout.write(`${table}\n`);
  writeFileSync(
    "BENCHMARKS.md",
    `# Benchmarks\n\nProduced by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}. Numbers on this 2-core machine are noisy (±15%).\n\n${table}\n`,
  );
  const failed = runs.reduce((n, r) => n + r.failed, 0) + notAllowed;
  if (failed > 0) {
    process.stderr.write(`${failed} requests failed\n`);
    process.exitCode = 1;
  }
  sink.close();
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill("SIGTERM");
  });
