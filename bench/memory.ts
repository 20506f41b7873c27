/**
 * Memory and GC pauses of the server as the image runs it, without Docker: the figures that
 * show the image's heap cap keeps RSS inside a container limit under many distinct callers;
 * the built CLI with exactly the Dockerfile's runtime ENV and node flags (NODE_OPTIONS included)
 * plus RISKGATE_DEV=true (docker-compose's), driven by bench/load.ts with BENCH_CALLERS distinct
 * callers (250000), each once, in batches; after each batch it reads RSS from /proc and the V8
 * heap, GC pauses and decisions from /metrics. Not part of `npm run bench`:
 *   npm run build && node dist/bench/memory.js
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../test/helpers/free-port.js";
import { closedLoop } from "./load.js";
import {
  benchKeys,
  benchRequest,
  benchToken,
  grpcFrame,
  serialize,
  subjectAt,
} from "./workload.js";

const CALLERS = Number(process.env.BENCH_CALLERS ?? 250_000);
const BATCH = 50_000;

/** The runtime stage's ENV lines of the Dockerfile, as KEY=value. */
function imageEnv(): Record<string, string> {
  const text = readFileSync("Dockerfile", "utf8").replace(/\\\n/g, " ");
  const runtime = text.slice(text.indexOf("AS runtime"));
  const env: Record<string, string> = {};
  for (const line of runtime.split("\n").filter((l) => l.startsWith("ENV "))) {
    for (const m of line.slice(4).matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
      env[m[1] as string] = (m[2] as string).replace(/^"|"$/g, "");
    }
  }
  return env;
}

const work = mkdtempSync(join(tmpdir(), "riskgate-memory-"));
const grpcPort = await freePort();
const metricsPort = await freePort();
const env: Record<string, string> = {
  PATH: process.env.PATH ?? "",
  ...imageEnv(),
  RISKGATE_DEV: "true",
  RISKGATE_POLICY: "policies/demo.yaml",
  RISKGATE_DEV_KEYS_DIR: join(work, "keys"),
  RISKGATE_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
  RISKGATE_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
};
process.stdout.write(
  `server env: NODE_OPTIONS=${env.NODE_OPTIONS} NODE_ENV=${env.NODE_ENV} (audit lines to /dev/null)\n`,
);
const child = spawn(process.execPath, ["dist/src/cli/main.js", "serve"], {
  env,
  stdio: ["ignore", "ignore", "inherit"],
});
const keys = await benchKeys(join(work, "keys"));

async function scrape(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
}
for (let i = 0; ; i++) {
  try {
    await scrape();
    break;
  } catch {
    if (i > 300) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
}
await new Promise((r) => setTimeout(r, 1000));

const sum = (text: string, re: RegExp) =>
  [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
function snapshot(label: string, text: string) {
  const rssKb = Number(
    /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1],
  );
  const heap = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1]) / 2 ** 20;
  const gcCount = sum(text, /^nodejs_gc_duration_seconds_count\{[^}]*\} (\S+)/gm);
  const gcSum = sum(text, /^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)/gm);
  const over = (le: string) =>
    gcCount -
    sum(text, new RegExp(`^nodejs_gc_duration_seconds_bucket\\{le="${le}"[^}]*\\} (\\S+)`, "gm"));
  const decisions = [...text.matchAll(/^riskgate_decisions_total\{([^}]*)\} (\S+)/gm)]
    .map((m) => `${m[1]}=${m[2]}`)
    .join(" ");
  process.stdout.write(
    `${label}: RSS ${(rssKb / 1024).toFixed(0)} MiB, heap used ${heap.toFixed(0)} MiB, GC ${gcCount} pauses (${(gcSum * 1000).toFixed(0)} ms total; >10 ms: ${over("0.01")}, >100 ms: ${over("0.1")}, >1 s: ${over("1")})\n  decisions: ${decisions}\n`,
  );
}
snapshot("at start", await scrape());

let slowest = 0;
let failed = 0;
for (let from = 0; from < CALLERS; from += BATCH) {
  const to = Math.min(CALLERS, from + BATCH);
  const bodies: Buffer[] = [];
  for (let n = from; n < to; n++) {
    const who = subjectAt(n);
    bodies.push(grpcFrame(serialize(benchRequest(await benchToken(keys, who), who))));
  }
  const r = await closedLoop({
    port: grpcPort,
    bodies,
    connections: 8,
    streams: 8,
    seconds: 600,
    maxRequests: bodies.length,
    order: "sequential",
  });
  failed += r.failed;
  const p = (q: number) => (r.micros[Math.floor(q * (r.micros.length - 1))] ?? 0) / 1000;
  slowest = Math.max(slowest, p(1));
  process.stdout.write(
    `batch ${from}..${to}: ${(r.requests / r.seconds).toFixed(0)} Check/s, non-OK ${r.failed}, client latency p50 ${p(0.5).toFixed(1)} p99 ${p(0.99).toFixed(1)} p99.9 ${p(0.999).toFixed(1)} max ${p(1).toFixed(1)} ms\n`,
  );
  snapshot(`after ${to} distinct callers`, await scrape());
}
const text = await scrape();
const budget = [
  ...text.matchAll(
    /^riskgate_decision_reasons_total\{[^}]*reason="(failure\.[^"]+)"[^}]*\} (\S+)/gm,
  ),
]
  .map((m) => `${m[1]}=${m[2]}`)
  .join(" ");
process.stdout.write(
  `non-OK answers: ${failed}; slowest Check at the client: ${slowest.toFixed(1)} ms; failure-mode reasons: ${budget || "none"}\n`,
);
child.kill("SIGINT");
await new Promise((r) => child.on("exit", r));
