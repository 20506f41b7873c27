/**
 * What every part of `npm run bench` shares: the scratch folder, the children it started (all
 * stopped on exit), pinning servers and load generators to different cores, starting a child
 * and waiting for its ready line, one h2load run, and rewriting one section of BENCHMARKS.md.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { h2loadQuantiles } from "./h2load-log.js";

export const work = mkdtempSync(join(tmpdir(), "riskgate-bench-"));
export const children: ChildProcess[] = [];
/** The built CLI (dist/src/cli/main.js). */
export const cli = new URL("../src/cli/main.js", import.meta.url).pathname;

export function hasTool(cmd: string): boolean {
  try {
    execFileSync(cmd, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function requireTool(cmd: string, pkg: string): void {
  if (hasTool(cmd)) return;
  process.stderr.write(`bench needs ${cmd}: apt-get install ${pkg}\n`);
  process.exit(2);
}

/**
 * Servers on core 0, the load generators (h2load, bench/load.ts in this process) on core 1, so
 * they do not take turns on one core by the scheduler's whim: the runs are steadier and each
 * server's numbers are one core's. Redis may use either core. BENCH_PIN=false turns it off.
 */
export const PIN = process.env.BENCH_PIN !== "false" && cpus().length >= 2 && hasTool("taskset");

/** Puts every thread of this process (and so the children it starts unpinned) on core 1. */
export function pinSelf(): void {
  if (PIN)
    execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
}

/**
 * Starts a node child whose stdout goes to a file; resolves once `ready` matches the file.
 * `cores`: the CPUs it may run on when pinning; `node`: flags for node itself (--cpu-prof).
 */
export async function start(
  name: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  cores = "0",
  node: string[] = [],
): Promise<{ match: string; pid: number; child: ChildProcess }> {
  const log = join(work, `${name}.log`);
  const argv = [...node, ...args];
  const [cmd, all] = PIN
    ? ["taskset", ["-c", cores, process.execPath, ...argv]]
    : [process.execPath, argv];
  const child = spawn(cmd as string, all as string[], {
    env: { ...process.env, ...env },
    stdio: ["ignore", openSync(log, "w"), "inherit"],
  });
  children.push(child);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = readFileSync(log, "utf8");
    const m = ready.exec(text);
    if (m) return { match: m[1] ?? "", pid: child.pid ?? 0, child };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${name} did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts redis-server on a port, allowed on either core (on core 1 alone h2load starves it),
 * and resolves once it accepts connections.
 */
export async function startRedis(port: number): Promise<ChildProcess> {
  const args = ["--port", String(port), "--save", "", "--appendonly", "no"];
  const redis = PIN
    ? spawn("taskset", ["-c", "0,1", "redis-server", ...args], { stdio: "ignore" })
    : spawn("redis-server", args, { stdio: "ignore" });
  children.push(redis);
  const deadline = Date.now() + 30_000;
  while (!(await accepts(port))) {
    if (redis.exitCode !== null || Date.now() > deadline)
      throw new Error(`redis-server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return redis;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export interface H2loadRun {
  scenario: string;
  rps: number;
  /** Responses with a 2xx status: every Check the server answered to h2load. */
  answered: number;
  failed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** One h2load run's load shape: closed loop `clients` x `streams`, an open loop, or one at a time. */
export interface H2loadShape {
  readonly clients: number;
  readonly streams: number;
  readonly rps?: number;
  readonly light?: boolean;
}

/** One h2load run of the framed CheckRequest in `body` against a gRPC server on `port`. */
export function h2load(
  scenario: string,
  port: number,
  body: string,
  seconds: number,
  load: H2loadShape,
): H2loadRun {
  const shape = load.light
    ? ["-c", "1", "-m", "1"]
    : load.rps !== undefined
      ? ["-c", String(load.clients), "-m", "1", "--rps", String(load.rps)]
      : ["-c", String(load.clients), "-m", String(load.streams)];
  // a fresh file per run: h2load appends to an existing --log-file, which would mix rounds
  const log = join(mkdtempSync(join(work, "h2load-")), `${scenario.replace(/\W+/g, "_")}.log`);
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
  const answered = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0);
  const q = h2loadQuantiles(log);
  return { scenario, rps, answered, failed, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
}

/**
 * Prints a section's new markdown and puts it into BENCHMARKS.md in place of the section that
 * starts with `heading` (or before the section starting with `before`, or before the Replay
 * section, or at the end), leaving the rest as it is.
 */
export function rewriteSection(heading: string, markdown: string, before = "\n## Replay"): void {
  process.stdout.write(`${markdown}\n`);
  let old = "# Benchmarks\n";
  try {
    old = readFileSync("BENCHMARKS.md", "utf8");
  } catch {
    // no file yet
  }
  const at = old.indexOf(heading);
  const next = at === -1 ? -1 : old.indexOf("\n## ", at + 1);
  const anchor = [before, "\n## Replay"].map((h) => old.indexOf(h)).find((i) => i !== -1) ?? -1;
  const [head, tail] =
    at !== -1
      ? [old.slice(0, at), next === -1 ? "" : old.slice(next)]
      : anchor !== -1
        ? [old.slice(0, anchor), old.slice(anchor)]
        : [old, ""];
  writeFileSync("BENCHMARKS.md", `${head.trimEnd()}\n\n${markdown.trimEnd()}\n${tail}`);
}
