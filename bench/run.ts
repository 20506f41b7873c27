/**
 * `npm run bench`. By default the outside method (bench/outside.ts: riskgate with the production
 * policy's signals and Redis, and "full" with a 10k-CIDR list, audit and metrics, beside a no-op
 * grpc-js server in the same rotated rounds; Check/s, server CPU per Check, one Check at a time,
 * two workers, Redis round trips, failure-mode and shed counts) and `riskgate replay`'s CPU cost
 * under the production policy (bench/replay-cpu.ts): about 5 minutes. Each part rewrites its
 * own section of BENCHMARKS.md; the process exits non-zero if any request failed or any Check
 * was refused for anything but the time budget (a measured figure with its own target).
 *
 * BENCH_ONLY picks parts:
 * - outside, replay, identity: one of the three default parts (identity: what identifying a
 *   Check costs per identity source, JWT beside jwt_authn, mTLS, API key and introspection,
 *   bench/identity.bench.ts, a few seconds);
 * - profile: riskgate under --cpu-prof at c4 m8 and the profile's summary (bench/profile.ts);
 * - classic: the method before the outside one (bench/classic.ts), about 8 minutes; its rows
 *   (a), (b), (d), (w) and light load are superseded by the outside method, its (c), RSS, (e),
 *   HTTP forward-auth and scoring-webhook rows are not;
 * - http, webhook: one classic section alone;
 * - all: outside, replay and classic.
 * Needs h2load (Debian: nghttp2-client), redis-server, /usr/bin/time (time) and, for classic
 * and http, nginx.
 * Env: BENCH_SECONDS (10), BENCH_ROUNDS (3 outside, 2 classic), BENCH_CLIENTS (8),
 * BENCH_STREAMS (16), BENCH_SEQUENTIAL (2000: Checks one at a time per server and round),
 * BENCH_SUBJECTS (100000: callers per RSS pass), BENCH_HTTP_CONNECTIONS (32), BENCH_PIN (true),
 * BENCH_KEEP=true keeps the scratch folder (servers' logs, the profile) after the run.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { classicBench, onlyHttp, onlyWebhook } from "./classic.js";
import { children, pinSelf, requireTool, rewriteSection, work } from "./harness.js";
import { outsideBench } from "./outside.js";
import { profileBench } from "./profile.js";
import { replayCpuBench } from "./replay-cpu.js";

const ONLY = process.env.BENCH_ONLY ?? "default";
const PARTS: Record<string, readonly string[]> = {
  default: ["identity", "replay", "outside"],
  all: ["identity", "replay", "outside", "classic"],
};

/** The outside section sits first, above every older section of BENCHMARKS.md. */
const OUTSIDE_HEADING = "\n## A Check as a user sees it";
const REPLAY_HEADING = "\n## riskgate replay under the production policy";
const IDENTITY_HEADING = "\n## Identity sources";

async function main(): Promise<void> {
  const parts = PARTS[ONLY] ?? [ONLY];
  const known = ["identity", "outside", "replay", "profile", "classic", "http", "webhook"];
  const unknown = parts.filter((p) => !known.includes(p));
  if (unknown.length > 0) throw new TypeError(`BENCH_ONLY: unknown part ${unknown.join(", ")}`);
  if (parts.includes("http")) return onlyHttp();
  if (parts.includes("webhook")) return onlyWebhook();
  if (parts.includes("identity")) {
    rewriteSection(IDENTITY_HEADING, identityBench(), "\n## Closed loop");
  }
  if (parts.every((p) => p === "identity")) return;
  requireTool("h2load", "nghttp2-client");
  requireTool("redis-server", "redis-server");
  let failed = 0;
  let replay: number | undefined;
  // the replay is one process measured by its own CPU time: not pinned, like `npm run eval`
  if (parts.includes("replay")) {
    const r = await replayCpuBench();
    replay = r.perCpuSecond;
    rewriteSection(REPLAY_HEADING, r.markdown, "\n## Closed loop");
  }
  // every thread of this process (and so h2load, its child) on core 1
  pinSelf();
  if (parts.includes("outside")) {
    const o = await outsideBench({
      seconds: Number(process.env.BENCH_SECONDS ?? 10),
      rounds: Number(process.env.BENCH_ROUNDS ?? 3),
      clients: Number(process.env.BENCH_CLIENTS ?? 8),
      streams: Number(process.env.BENCH_STREAMS ?? 16),
      sequential: Number(process.env.BENCH_SEQUENTIAL ?? 2000),
      ...(replay === undefined ? {} : { replay }),
    });
    failed += o.failed;
    rewriteSection(OUTSIDE_HEADING, o.markdown, REPLAY_HEADING);
  }
  if (parts.includes("profile")) await profileBench();
  if (parts.includes("classic")) await classicBench();
  if (failed > 0) {
    process.stderr.write(`${failed} Checks failed or were refused\n`);
    process.exitCode = 1;
  }
}

/** identify() per Check for each identity source, in process (bench/identity.bench.ts). */
function identityBench(): string {
  const script = new URL("./identity.bench.js", import.meta.url).pathname;
  const out = execFileSync(process.execPath, [script, "20000"], { encoding: "utf8" });
  const lines = out.trim().split("\n");
  const rows = lines.slice(1).map((line) => {
    const m = /^(.+?)\s+([0-9.]+) us$/.exec(line);
    return m === null ? `| ${line} | |` : `| \`${m[1]}\` | ${m[2]} us |`;
  });
  return [
    IDENTITY_HEADING.trim(),
    "",
    `${new Date().toISOString().slice(0, 10)}: ${lines[0] ?? ""} (in process; the same caller again and`,
    "again as a steady client; a first JWT costs a signature check, a first opaque token one endpoint round trip).",
    "",
    "| source | identify() per Check |",
    "|---|---:|",
    ...rows,
    "",
  ].join("\n");
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill("SIGTERM");
    if (process.env.BENCH_KEEP !== "true") rmSync(work, { recursive: true, force: true });
    else process.stderr.write(`bench: scratch folder kept at ${work}\n`);
  });
