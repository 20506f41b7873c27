/**
 * `npm run bench`: Check/s and latency of riskgate next to a no-op server on the same stack,
 * driven by the same load generator (h2load replaying one serialized CheckRequest over gRPC
 * framing), alternating runs to cancel drift. Writes BENCHMARKS.md.
 *
 * Needs h2load (Debian: nghttp2-client). Options via env: BENCH_SECONDS (10), BENCH_ROUNDS (2),
 * BENCH_CLIENTS (8), BENCH_STREAMS (16).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import { buildCheckRequest } from "../src/cli/check.js";
import { PROTO_OPTIONS } from "../src/transport/protos.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 16);
const work = mkdtempSync(join(tmpdir(), "riskgate-bench-"));
const children: ChildProcess[] = [];

function requireH2load(): void {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write("bench needs h2load: apt-get install nghttp2-client\n");
    process.exit(2);
  }
}

/** Starts a child and resolves with the port it reports ("listening N" or riskgate's log line). */
function start(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)|"port":(\d+)/.exec(out);
      if (m) resolve(Number(m[1] ?? m[2]));
    });
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited ${code}`)));
  });
}

function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

interface Run {
  target: string;
  rps: number;
  ok: number;
  failed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function h2load(target: string, port: number, body: string, seconds: number): Run {
  const log = join(work, `${target}.log`);
  const out = execFileSync(
    "h2load",
    [
      "-D",
      String(seconds),
      "-c",
      String(CLIENTS),
      "-m",
      String(STREAMS),
      "-t",
      "1",
      "-d",
      body,
      "--log-file",
      log,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      `http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`,
    ],
    { encoding: "utf8" },
  );
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const ok = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0);
  const failed = Number(
    /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed/.exec(out)?.[1] ?? 0,
  );
  const micros = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((l) => Number(l.split("\t")[2]))
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  const q = (p: number) =>
    (micros[Math.min(micros.length - 1, Math.floor(p * micros.length))] ?? 0) / 1000;
  return { target, rps, ok, failed, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
}

async function main(): Promise<void> {
  requireH2load();
  const cli = new URL("../src/cli/main.js", import.meta.url).pathname;
  const keys = join(work, "keys");
  const env = {
    RISKGATE_DEV: "true",
    RISKGATE_DEV_KEYS_DIR: keys,
    RISKGATE_POLICY: new URL("../../bench/policy.yaml", import.meta.url).pathname,
    RISKGATE_LOG_LEVEL: "warn",
  };
  const token = execFileSync(
    process.execPath,
    [
      cli,
      "token",
      "--sub",
      "bench-user",
      "--tier",
      "enterprise",
      "--org",
      "bench",
      "--amr",
      "pwd,mfa",
      "--ttl",
      "2h",
    ],
    { env: { ...process.env, ...env }, encoding: "utf8" },
  ).trim();

  const def = protoLoader.loadSync("envoy/service/auth/v3/external_auth.proto", PROTO_OPTIONS);
  const method = (def["envoy.service.auth.v3.Authorization"] as protoLoader.ServiceDefinition)
    .Check as protoLoader.MethodDefinition<object, object>;
  const request = buildCheckRequest({
    method: "GET",
    path: "/v1/items?limit=20",
    host: "api.example.com",
    ip: "203.0.113.7",
    token,
    headers: {
      accept: "application/json",
      "x-forwarded-proto": "https",
      "x-request-id": "7f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8",
      "user-agent":
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    },
  });
  const message = method.requestSerialize(request);
  const body = join(work, "check.bin");
  writeFileSync(body, grpcFrame(message));

  const noopPort = await start([new URL("./noop-server.js", import.meta.url).pathname, "0"], {});
  const riskgatePort = await start([cli, "serve", "--address", "127.0.0.1:0"], {
    ...env,
    RISKGATE_LOG_LEVEL: "info",
  });
  // warm up both (JIT, token cache)
  h2load("noop", noopPort, body, 2);
  h2load("riskgate", riskgatePort, body, 2);

  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    runs.push(h2load("noop", noopPort, body, SECONDS));
    runs.push(h2load("riskgate", riskgatePort, body, SECONDS));
  }
  const best = (t: string) =>
    runs.filter((r) => r.target === t).sort((a, b) => b.rps - a.rps)[0] as Run;
  const noop = best("noop");
  const rg = best("riskgate");
  const rows = runs.map(
    (r) =>
      `| ${r.target} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p90.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} | ${r.failed} |`,
  );
  const ratio = rg.rps / noop.rps;
  const table = [
    `Machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`,
    `Load: h2load, ${CLIENTS} connections x ${STREAMS} streams, ${SECONDS} s a run, ${ROUNDS} alternating rounds, one ${message.length}-byte CheckRequest (cached ES256 token, demo-like policy, in-memory store).`,
    "",
    "| server | Check/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    `riskgate / no-op (best runs): **${(ratio * 100).toFixed(0)}%** (${rg.rps.toFixed(0)} / ${noop.rps.toFixed(0)} Check/s).`,
  ].join("\n");
  process.stdout.write(`${table}\n`);
  writeFileSync(
    "BENCHMARKS.md",
    `# Benchmarks\n\nProduced by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}. Latencies are at the client (h2load), closed loop, so they include queueing at full load.\n\n${table}\n`,
  );
  const errors = runs.reduce((n, r) => n + r.failed, 0);
  if (errors > 0) {
    process.stderr.write(`${errors} requests failed\n`);
    process.exitCode = 1;
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill("SIGTERM");
  });
