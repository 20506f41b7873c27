/**
 * `BENCH_ONLY=profile npm run bench`: riskgate (production signals, Redis, as the outside
 * method's "riskgate") under `node --cpu-prof`, warmed up, then h2load c4 m8 for 10 s of steady
 * state; the profile is kept in bench/results/ and summarised over that window only
 * (bench/cpuprofile-summary.ts), with the server's own CPU per Check from /proc beside it.
 * Env: BENCH_PROFILE_SECONDS (10), BENCH_PROFILE_INTERVAL_US (250: the sampling interval).
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { freePort } from "../test/helpers/free-port.js";
import { type CpuProfile, summarise } from "./cpuprofile-summary.js";
import { cli, h2load, start, startRedis, work } from "./harness.js";
import { treeCpuSeconds } from "./proc-cpu.js";
import { writeBenchProductionPolicy } from "./production-policy.js";
import { benchKeys, benchRequest, benchToken, grpcFrame, SINGLE, serialize } from "./workload.js";

const SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
const INTERVAL_US = Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 250);
const RESULTS = new URL("../../bench/results/", import.meta.url).pathname;

export async function profileBench(): Promise<void> {
  const redisPort = await freePort();
  await startRedis(redisPort);
  const keysDir = join(work, "keys");
  const keys = await benchKeys(keysDir);
  const policy = writeBenchProductionPolicy({
    issuer: "https://riskgate.dev/demo",
    audience: "demo-api",
    jwksFile: join(keysDir, "jwks.json"),
    out: join(work, "production-profile.yaml"),
  });
  const body = join(work, "profile-check.bin");
  writeFileSync(body, grpcFrame(serialize(benchRequest(await benchToken(keys, SINGLE), SINGLE))));
  const profDir = join(work, "cpuprofile");
  mkdirSync(profDir, { recursive: true });
  const spawnedAt = performance.now();
  const server = await start(
    "profile-riskgate",
    [cli, "serve", "--address", "127.0.0.1:0"],
    {
      RISKGATE_DEV: "false",
      RISKGATE_POLICY: policy,
      RISKGATE_GEO: "embedded",
      RISKGATE_HTTP_ADDRESS: "off",
      RISKGATE_METRICS_ADDRESS: "off",
      RISKGATE_AUDIT: "false",
      RISKGATE_DRAIN_DELAY_MS: "0",
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    },
    /"port":(\d+)[^\n]*"msg":"riskgate serving"/,
    "0",
    ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", String(INTERVAL_US)],
  );
  const port = Number(server.match);
  const shape = { clients: 4, streams: 8 };
  h2load("profile warm-up", port, body, 3, shape);
  const loadBefore = loadavg();
  const from = (performance.now() - spawnedAt) / 1000;
  const cpu0 = treeCpuSeconds(server.pid);
  const run = h2load("profile c4 m8", port, body, SECONDS, shape);
  const cpu = treeCpuSeconds(server.pid) - cpu0;
  const to = (performance.now() - spawnedAt) / 1000;
  const loadAfter = loadavg();
  // the profile is written when the process exits
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
  server.child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`no .cpuprofile written in ${profDir}`);
  mkdirSync(RESULTS, { recursive: true });
  const kept = join(RESULTS, `riskgate-c4m8-${new Date().toISOString().slice(0, 10)}.cpuprofile`);
  copyFileSync(join(profDir, file), kept);
  const profile = JSON.parse(readFileSync(kept, "utf8")) as CpuProfile;
  // a margin inside the run: the profile starts a little after the spawn
  const window = { from: Number((from + 0.5).toFixed(1)), to: Number((to - 0.5).toFixed(1)) };
  const checks = Math.round(run.answered * ((window.to - window.from) / (to - from)));
  process.stdout.write(
    [
      `# riskgate under --cpu-prof (interval ${INTERVAL_US} µs), production signals, Redis, h2load c4 m8 ${SECONDS} s`,
      `${new Date().toISOString()}; load average ${loadBefore.map((n) => n.toFixed(1)).join(", ")} before, ${loadAfter.map((n) => n.toFixed(1)).join(", ")} after.`,
      `${run.rps.toFixed(0)} Check/s, ${run.answered} answered, p50 ${run.p50.toFixed(2)} ms, p99 ${run.p99.toFixed(2)} ms, ${run.failed} failed; server CPU from /proc ${((cpu * 1e6) / Math.max(1, run.answered)).toFixed(1)} µs per Check (with the profiler's own overhead).`,
      `Profile: ${kept}; summary over ${window.from}..${window.to} s (about ${checks} Checks):`,
      "",
      summarise(profile, {
        ...window,
        checks,
        cpuPerCheckUs: (cpu * 1e6) / Math.max(1, run.answered),
      }),
      "",
    ].join("\n"),
  );
}
