/**
 * Replay speed: decisions per second of `riskgate replay` on one core (a plain script, not
 * vitest, not part of `npm run bench`):
 *
 *   npm run build && node dist/bench/replay.bench.js [lines]
 *
 * Writes [lines] (default 1,000,000) of seeded traffic (bench/replay-traffic.ts: 2,000 users
 * of three tiers, dev-key tokens renewed hourly, a mean gap of 86 ms: one day of a mid-size
 * API in 1M Checks) to a temporary JSONL file, then replays it with policies/demo.yaml exactly
 * as the CLI does (reading the file line by line, writing the DecisionRecords to a file) and
 * reports the time from the first line read to the last record written, in wall-clock seconds
 * and in CPU seconds of the process (the fair figure on a shared machine: the replay is one
 * thread, plus libuv's pool for the few signature verifications of new tokens).
 */
import { once } from "node:events";
import {
  createReadStream,
  createWriteStream,
  mkdtempSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { loadPolicyFile } from "../src/access/policy.js";
import { createDevKeySource, loadOrCreateDevKeys } from "../src/cli/dev-keys.js";
import { openEmbeddedGeoReader } from "../src/geo/geo-reader.js";
import { replay } from "../src/replay/replay.js";
import { generateTraffic } from "./replay-traffic.js";

const LINES = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), "riskgate-replay-bench-"));
const input = join(dir, "traffic.jsonl");
const output = join(dir, "decisions.jsonl");

async function main(): Promise<void> {
  const keys = await loadOrCreateDevKeys(join(dir, "keys"));
  const policy = await loadPolicyFile("policies/demo.yaml");
  const genStart = performance.now();
  const file = createWriteStream(input);
  for await (const line of generateTraffic({
    keys,
    iss: "https://riskgate.dev/demo",
    aud: "demo-api",
    lines: LINES,
    start: Date.UTC(2026, 10, 16, 0, 0, 0),
    gapMs: 86,
    users: 2000,
    seed: 42,
  })) {
    if (!file.write(`${line}\n`)) await once(file, "drain");
  }
  file.end();
  await once(file, "close");
  const genSeconds = (performance.now() - genStart) / 1000;
  const geo = await openEmbeddedGeoReader();
  const out = createWriteStream(output);
  const lines = createInterface({ input: createReadStream(input), crlfDelay: Infinity });
  const counts: Record<string, number> = {};
  let first = "";
  let last = "";
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let n = 0;
  for await (const record of replay(
    { policy, keys: createDevKeySource(keys.publicJwks), geo },
    lines,
  )) {
    n++;
    if (first === "") first = record.time;
    last = record.time;
    counts[record.decision] = (counts[record.decision] ?? 0) + 1;
    if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, "drain");
  }
  out.end();
  await once(out, "close");
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
  const result = {
    n,
    seconds,
    cpuSeconds,
    first,
    last,
    genSeconds,
    rss: process.memoryUsage().rss,
    counts,
  };
  writeSection(result);
  process.stdout.write(
    `${JSON.stringify({
      decisions: n,
      seconds: Number(seconds.toFixed(1)),
      decisions_per_second: Math.round(n / seconds),
      cpu_seconds: Number(cpuSeconds.toFixed(1)),
      decisions_per_cpu_second: Math.round(n / cpuSeconds),
      simulated: `${first} .. ${last}`,
      input_mib: Number(mib(statSync(input).size)),
      generate_seconds: Number(genSeconds.toFixed(1)),
      rss_mib: Number(mib(process.memoryUsage().rss)),
      decisions_by_outcome: counts,
      node: process.version,
    })}\n`,
  );
}

/** Writes (or replaces) the `## Replay` section of BENCHMARKS.md. */
function writeSection(r: {
  n: number;
  seconds: number;
  cpuSeconds: number;
  first: string;
  last: string;
  genSeconds: number;
  rss: number;
  counts: Record<string, number>;
}): void {
  const load = loadavg().map((l) => l.toFixed(1));
  const section = [
    "",
    "## Replay",
    "",
    `Produced by \`npm run build && taskset -c 1 node dist/bench/replay.bench.js ${LINES}\` on ${new Date().toISOString().slice(0, 10)}: ${r.n.toLocaleString("en")} generated CheckRequests (bench/replay-traffic.ts, 2,000 users, ${r.first} .. ${r.last}) replayed with policies/demo.yaml, the memory store and the embedded geo database, read from and written to JSONL files as \`riskgate replay\` does. The machine was shared with other test runs while this ran (load average ${load.join(", ")} on ${cpus().length} cores), so wall-clock time overstates the cost; CPU time is the figure to compare.`,
    "",
    "| replay | decisions | wall s | decisions/s (wall) | CPU s | decisions per CPU second | RSS MiB |",
    "|---|---|---|---|---|---|---|",
    `| one core, demo policy | ${r.n} | ${r.seconds.toFixed(1)} | ${Math.round(r.n / r.seconds)} | ${r.cpuSeconds.toFixed(1)} | ${Math.round(r.n / r.cpuSeconds)} | ${Math.round(r.rss / 1048576)} |`,
    "",
    `Decisions: ${JSON.stringify(r.counts)} (the generated traffic is not labelled and not realistic in its mix; it exercises every stateful signal). Generating the input took ${r.genSeconds.toFixed(0)} s (token signing) and is not counted.`,
    "",
  ].join("\n");
  let text = "";
  try {
    text = readFileSync("BENCHMARKS.md", "utf8");
  } catch {
    text = "# Benchmarks\n";
  }
  const at = text.indexOf("\n## Replay");
  const before = at === -1 ? text.replace(/\n*$/, "\n") : text.slice(0, at + 1);
  writeFileSync("BENCHMARKS.md", `${before}${section}`);
}

void main();
