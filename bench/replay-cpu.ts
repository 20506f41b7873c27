/**
 * `riskgate replay` as a user runs it, under the shipped production policy: the built CLI as a
 * child process on the labelled week `npm run eval -- --generate-only` writes, timed by
 * /usr/bin/time (user + system CPU of the child, its peak RSS). A second replay of the week's
 * first lines gives the fixed start-up cost (policy, geo and ASN data, lists), reported apart.
 */
import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { cli, hasTool, work } from "./harness.js";
import { PRODUCTION_POLICY } from "./production-policy.js";

const EVAL_MAIN = new URL("./eval/main.js", import.meta.url).pathname;
const HEAD_LINES = 1000;

interface Timed {
  readonly cpu: number;
  readonly wall: number;
  readonly rssMiB: number;
}

/** One replay by the built CLI; its decisions go to /dev/null (stdout ignored). */
function timedReplay(input: string, jwks: string): Timed {
  const times = join(work, "replay-time.txt");
  const args = ["replay", "--policy", PRODUCTION_POLICY, "--jwks", jwks];
  execFileSync(
    "/usr/bin/time",
    ["-o", times, "-f", "%U %S %e %M", process.execPath, cli, ...args, "--input", input],
    { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, RISKGATE_LOG_LEVEL: "warn" } },
  );
  const [user, sys, wall, rssKb] = readFileSync(times, "utf8").trim().split(/\s+/).map(Number);
  return { cpu: (user ?? 0) + (sys ?? 0), wall: wall ?? 0, rssMiB: (rssKb ?? 0) / 1024 };
}

async function head(file: string, lines: number, to: string): Promise<void> {
  const out = createWriteStream(to);
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(file) })) {
    if (n++ >= lines) break;
    out.write(`${line}\n`);
  }
  await new Promise<void>((resolve) => out.end(resolve));
}

export interface ReplayCpuResult {
  readonly markdown: string;
  readonly perCpuSecond: number;
}

/** Generates the week, replays it, and returns the "## riskgate replay, production" section. */
export async function replayCpuBench(): Promise<ReplayCpuResult> {
  if (!hasTool("/usr/bin/time")) {
    process.stderr.write("bench needs /usr/bin/time: apt-get install time\n");
    process.exit(2);
  }
  const out = join(work, "eval");
  const generated = execFileSync(
    process.execPath,
    [EVAL_MAIN, "--generate-only", "--policy", PRODUCTION_POLICY, "--out", out],
    { encoding: "utf8" },
  );
  const dir = join(out, "production");
  const requests = join(dir, "requests.jsonl");
  const jwks = join(dir, "jwks.json");
  const lines = Number(/wrote (?:the planned )?(\d+) requests/.exec(generated)?.[1] ?? 0);
  const firstLines = join(work, "replay-head.jsonl");
  await head(requests, HEAD_LINES, firstLines);
  const load = [loadavg()];
  const startUp = timedReplay(firstLines, jwks);
  const week = timedReplay(requests, jwks);
  load.push(loadavg());
  const perCpuSecond = lines / week.cpu;
  const net = (lines - HEAD_LINES) / Math.max(0.01, week.cpu - startUp.cpu);
  const fmt = (l: number[]) => l.map((n) => n.toFixed(1)).join(", ");
  const markdown = [
    "## riskgate replay under the production policy",
    "",
    `Produced by \`npm run bench\` (BENCH_ONLY=replay for this section alone) on ${new Date().toISOString().slice(0, 10)}: the labelled week \`npm run eval -- --generate-only\` writes for policies/production.yaml (seed riskgate-eval-1, ${lines.toLocaleString("en-US")} CheckRequests), replayed by the built CLI exactly as \`npm run eval\` runs it (\`riskgate replay --policy policies/production.yaml --jwks ... --input ...\`, memory store, embedded geo), CPU of the child from /usr/bin/time. Load average ${fmt(load[0] ?? [])} before, ${fmt(load[1] ?? [])} after; CPU time is the figure to compare on this shared machine.`,
    "",
    "| replay | decisions | CPU s | wall s | decisions per CPU-second | peak RSS MiB |",
    "|---|---|---|---|---|---|",
    `| the week, whole process | ${lines} | ${week.cpu.toFixed(1)} | ${week.wall.toFixed(1)} | **${Math.round(perCpuSecond)}** | ${week.rssMiB.toFixed(0)} |`,
    `| its first ${HEAD_LINES} lines (start-up: policy, geo, ASN, lists) | ${HEAD_LINES} | ${startUp.cpu.toFixed(1)} | ${startUp.wall.toFixed(1)} | - | ${startUp.rssMiB.toFixed(0)} |`,
    `| the week net of start-up | ${lines - HEAD_LINES} | ${(week.cpu - startUp.cpu).toFixed(1)} | - | ${Math.round(net)} | - |`,
    "",
    "Target: >= 10,000 decisions per CPU-second (the whole process).",
  ].join("\n");
  return { markdown, perCpuSecond };
}
