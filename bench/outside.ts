/**
 * The outside method: what a Check costs as the user of riskgate sees it, beside the stack's own
 * floor in the same run.
 *
 * - One Envoy CheckRequest (built with the protos in protos/, `GET /v1/items` from a browser)
 *   for every server, carrying a real ES256 token that riskgate verifies through its JWKS-file
 *   key source (not dev mode) and allows.
 * - Servers: a no-op grpc-js server (proto-loader decoding, answers OK at once); riskgate with
 *   policies/production.yaml's signals and Redis ("riskgate"); the same plus a 10,000-CIDR block
 *   list, audit lines and metrics ("full"); and the no-op and full with two worker processes.
 * - Rounds rotated (no-op, riskgate, full, no-op x2, full x2; three times by default), h2load
 *   c8 m16 for 10 s each; per round the ratio to that round's no-op, then the median of rounds,
 *   since the machine is shared and only ratios within a round compare.
 * - Server CPU per Check from /proc (the server and all its workers), Redis round trips per
 *   Check from INFO commandstats, failure-mode decisions and shed Checks from the metrics.
 * - Then one Check at a time (a sequential grpc-js client) against the no-op, riskgate and full.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describeResponse } from "../src/cli/check.js";
import { createClient } from "../src/cli/client.js";
import { freePort } from "../test/helpers/free-port.js";
import { cli, type H2loadRun, h2load, start, startRedis, work } from "./harness.js";
import {
  type OutsideFigures,
  outsideMarkdown,
  type RunSample,
  type SequentialSample,
} from "./outside-report.js";
import { treeCpuSeconds } from "./proc-cpu.js";
import { writeBenchProductionPolicy, writeBlockList } from "./production-policy.js";
import {
  byLabel,
  commandStats,
  delta,
  type MonitorSample,
  metricsText,
  monitorWhile,
  roundTrips,
  sumSamples,
} from "./scrape.js";
import { quantileUs, sequentialChecks } from "./sequential.js";
import {
  benchKeys,
  benchRequest,
  benchToken,
  checkCodec,
  grpcFrame,
  SINGLE,
  serialize,
} from "./workload.js";

export interface OutsideOptions {
  readonly seconds: number;
  readonly rounds: number;
  readonly clients: number;
  readonly streams: number;
  /** Checks per server per round, one at a time. */
  readonly sequential: number;
  /** Decisions per CPU-second of `riskgate replay`, when that part ran first. */
  readonly replay?: number;
}

/** One server under test. */
interface Target {
  readonly key: "noop" | "riskgate" | "full" | "noop2" | "full2";
  readonly label: string;
  readonly port: number;
  readonly pid: number;
  readonly metrics?: number;
  /** Its log file's name in the scratch folder. */
  readonly log: string;
}

const SERVING = /"port":(\d+)[^\n]*"msg":"riskgate serving"/;
const BLOCK_LIST_SIZE = 10_000;
/** Sequential Checks per riskgate watched with MONITOR. */
const MONITOR_CHECKS = 200;

/**
 * Store failures a server logged (its warning is throttled to one line per 10 s carrying the
 * count it stands for, so this is a lower bound): the one sign of failure-mode answers from a
 * server running without metrics.
 */
function storeFailuresLogged(target: Target): number {
  let n = 0;
  const text = readFileSync(join(work, `${target.log}.log`), "utf8");
  for (const m of text.matchAll(/"suppressed":(\d+),"msg":"store call failed/g))
    n += 1 + Number(m[1]);
  return n;
}

async function startTargets(redisPort: number): Promise<Target[]> {
  const keysDir = join(work, "keys");
  await benchKeys(keysDir);
  const identity = {
    issuer: "https://riskgate.dev/demo",
    audience: "demo-api",
    jwksFile: join(keysDir, "jwks.json"),
  };
  const plainPolicy = writeBenchProductionPolicy({
    ...identity,
    out: join(work, "production-bench.yaml"),
  });
  const fullPolicy = writeBenchProductionPolicy({
    ...identity,
    out: join(work, "production-full.yaml"),
    extraBlockList: writeBlockList(work, BLOCK_LIST_SIZE),
  });
  const env = (policy: string, prefix: string, metrics?: number): Record<string, string> => ({
    RISKGATE_DEV: "false",
    RISKGATE_POLICY: policy,
    RISKGATE_LOG_LEVEL: "info",
    RISKGATE_GEO: "embedded",
    RISKGATE_HTTP_ADDRESS: "off",
    RISKGATE_DRAIN_DELAY_MS: "0",
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    // each server its own state, as if it ran alone
    RISKGATE_REDIS_KEY_PREFIX: `${prefix}:`,
    RISKGATE_METRICS_ADDRESS: metrics === undefined ? "off" : `127.0.0.1:${metrics}`,
    RISKGATE_AUDIT: metrics === undefined ? "false" : "true",
  });
  const noopJs = new URL("./noop-server.js", import.meta.url).pathname;
  const noop = await start("outside-noop", [noopJs, "0"], {}, /listening (\d+)/);
  // two workers get both cores (h2load keeps running on core 1 beside them)
  const noop2 = await start("outside-noop2", [noopJs, "0", "2"], {}, /listening (\d+)/, "0,1");
  const serve = (name: string, vars: Record<string, string>, workers = 1) =>
    start(
      name,
      [cli, "serve", "--address", "127.0.0.1:0", "--workers", String(workers)],
      vars,
      SERVING,
      workers > 1 ? "0,1" : "0",
    );
  const riskgate = await serve("outside-riskgate", env(plainPolicy, "rg"));
  const fullMetrics = await freePort();
  const full = await serve("outside-full", env(fullPolicy, "full", fullMetrics));
  const full2Metrics = await freePort();
  const full2 = await serve("outside-full2", env(fullPolicy, "full2", full2Metrics), 2);
  const t = (
    key: Target["key"],
    label: string,
    s: { match: string; pid: number },
    metrics?: number,
  ): Target => ({
    key,
    label,
    log: `outside-${key}`,
    port: Number(s.match),
    pid: s.pid,
    ...(metrics === undefined ? {} : { metrics }),
  });
  return [
    t("noop", "no-op grpc-js", noop),
    t("riskgate", "riskgate, production signals, Redis", riskgate),
    t("full", "full: + 10k-CIDR list, audit, metrics", full, fullMetrics),
    t("noop2", "no-op grpc-js, 2 processes", noop2),
    t("full2", "full, --workers 2", full2, full2Metrics),
  ];
}

/**
 * Every riskgate must allow the bench request, or its numbers mean nothing. A failure-mode
 * answer (the first Check of a cold server on a busy machine can outlast the time budget) is
 * asked again, a bounded number of times; any other refusal stops the bench.
 */
async function requireAllow(targets: readonly Target[], request: Parameters<typeof serialize>[0]) {
  for (const target of targets) {
    if (target.key.startsWith("noop")) continue;
    const client = createClient(`127.0.0.1:${target.port}`);
    try {
      for (let attempt = 1; ; attempt++) {
        const view = describeResponse(await client.check(request));
        if (view.decision === "allow") break;
        if (attempt >= 20 || !view.body.includes('"code":"failure.'))
          throw new Error(`${target.label}: bench request got ${view.decision} ${view.body}`);
      }
    } finally {
      client.close();
    }
  }
}

interface Counters {
  readonly cpu: number;
  readonly redis: Record<string, number>;
  readonly redisUsec: Record<string, number>;
  readonly metrics?: string;
}

async function counters(target: Target, redis: Redis): Promise<Counters> {
  return {
    cpu: treeCpuSeconds(target.pid),
    ...(await commandStats(redis).then((r) => ({ redis: r.calls, redisUsec: r.usec }))),
    ...(target.metrics === undefined ? {} : { metrics: await metricsText(target.metrics) }),
  };
}

function sample(
  target: Target,
  round: number,
  run: H2loadRun,
  before: Counters,
  after: Counters,
  load: [number, number],
): RunSample {
  const trips = roundTrips(delta(after.redis, before.redis));
  const usec = delta(after.redisUsec, before.redisUsec);
  const scriptUsec = (usec.evalsha ?? 0) + (usec.eval ?? 0);
  const fromMetrics = (name: string, labels = "") => {
    if (before.metrics === undefined || after.metrics === undefined) return undefined;
    const a = sumSamples(after.metrics, name, labels);
    const b = sumSamples(before.metrics, name, labels);
    return a === undefined || b === undefined ? undefined : a - b;
  };
  const decisions =
    before.metrics === undefined || after.metrics === undefined
      ? undefined
      : delta(
          byLabel(after.metrics, "riskgate_decisions_total", "decision"),
          byLabel(before.metrics, "riskgate_decisions_total", "decision"),
        );
  const budget = fromMetrics("riskgate_decision_reasons_total", 'reason="failure.budget"');
  const storeFailed = fromMetrics("riskgate_decision_reasons_total", 'reason="failure.store"');
  const shed = fromMetrics("riskgate_checks_shed_total");
  return {
    key: target.key,
    label: target.label,
    round,
    run,
    cpuSeconds: after.cpu - before.cpu,
    scripts: trips.scripts,
    otherCommands: trips.other,
    redisSeconds: scriptUsec / 1e6,
    ...(decisions === undefined ? {} : { decisions }),
    ...(budget === undefined ? {} : { budget }),
    ...(storeFailed === undefined ? {} : { storeFailed }),
    ...(shed === undefined ? {} : { shed }),
    load,
  };
}

/** The closed-loop rounds: every target in turn, `rounds` times, with its counters around it. */
async function closedLoopRounds(
  targets: readonly Target[],
  redis: Redis,
  body: string,
  opts: OutsideOptions,
): Promise<RunSample[]> {
  const shape = { clients: opts.clients, streams: opts.streams };
  for (const t of targets) h2load(`warm ${t.label}`, t.port, body, 2, shape);
  const samples: RunSample[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (const target of targets) {
      const before = await counters(target, redis);
      const loadAt = loadavg()[0] ?? 0;
      const run = h2load(target.label, target.port, body, opts.seconds, shape);
      const after = await counters(target, redis);
      samples.push(sample(target, round, run, before, after, [loadAt, loadavg()[0] ?? 0]));
    }
  }
  return samples;
}

/** One Check at a time, rounds rotated like the closed loop; every riskgate answer an allow. */
async function sequentialRounds(
  targets: readonly Target[],
  message: Buffer,
  opts: OutsideOptions,
): Promise<{ samples: SequentialSample[]; failed: number }> {
  const codec = checkCodec();
  const samples: SequentialSample[] = [];
  let failed = 0;
  for (let round = 0; round < opts.rounds; round++) {
    for (const target of targets) {
      const warmup = round === 0 ? 200 : 20;
      const r = await sequentialChecks(target.port, message, opts.sequential, warmup);
      failed += r.failed;
      if (!target.key.startsWith("noop") && r.last !== undefined) {
        const view = describeResponse(codec.responseDeserialize(r.last));
        if (view.decision !== "allow") failed++;
      }
      const p50 = quantileUs(r.micros, 0.5);
      samples.push({ key: target.key, round, p50, p99: quantileUs(r.micros, 0.99) });
    }
  }
  return { samples, failed };
}

/**
 * Refusals that break the measurement: a failure-mode answer under saturation (time budget,
 * store timeout) is a measured figure; any other refusal means the bench request was not the
 * allowed Check it should be.
 */
function unexpectedRefusals(samples: readonly RunSample[]): number {
  let n = 0;
  for (const s of samples) {
    for (const [decision, count] of Object.entries(s.decisions ?? {}))
      if (decision !== "allow") n += count;
    n -= (s.budget ?? 0) + (s.storeFailed ?? 0);
  }
  return n;
}

/** Runs the outside method; resolves to its BENCHMARKS.md section and the failures it saw. */
export async function outsideBench(
  opts: OutsideOptions,
): Promise<{ markdown: string; failed: number; figures: OutsideFigures }> {
  const loadBefore = loadavg();
  const redisPort = await freePort();
  await startRedis(redisPort);
  const redis = new Redis({ port: redisPort, lazyConnect: true });
  try {
    await redis.connect();
    const targets = await startTargets(redisPort);
    const keys = await benchKeys(join(work, "keys"));
    const request = benchRequest(await benchToken(keys, SINGLE), SINGLE);
    const message = serialize(request);
    const body = join(work, "outside-check.bin");
    writeFileSync(body, grpcFrame(message));
    await requireAllow(targets, request);
    const samples = await closedLoopRounds(targets, redis, body, opts);
    const single = targets.filter((t) => !t.key.endsWith("2"));
    const sequential = await sequentialRounds(single, message, opts);
    // which commands are round trips and which run inside the script: a short MONITOR sample
    const monitored: Record<string, MonitorSample & { checks: number }> = {};
    for (const target of single.filter((t) => !t.key.startsWith("noop"))) {
      const m = await monitorWhile(redis, async () => {
        await sequentialChecks(target.port, message, MONITOR_CHECKS);
      });
      monitored[target.key] = { ...m, checks: MONITOR_CHECKS };
    }
    await requireAllow(targets, request);
    const report = outsideMarkdown({
      monitored,
      logFailures: Object.fromEntries(targets.map((t) => [t.key, storeFailuresLogged(t)])),
      samples,
      sequential: sequential.samples,
      requestBytes: message.length,
      options: opts,
      blockListSize: BLOCK_LIST_SIZE,
      load: [loadBefore, loadavg()],
      ...(opts.replay === undefined ? {} : { replay: opts.replay }),
    });
    const failed =
      samples.reduce((n, s) => n + s.run.failed, 0) +
      sequential.failed +
      unexpectedRefusals(samples);
    return { markdown: report.markdown, figures: report.figures, failed };
  } finally {
    redis.disconnect();
  }
}
