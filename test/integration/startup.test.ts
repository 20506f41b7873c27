import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createClient } from "../../src/cli/client.js";
import { ServingStatus } from "../../src/transport/health.js";
import { freePort } from "../helpers/free-port.js";

/**
 * Every fatal start-up error closes what was opened and exits, as a real child process
 * of the built CLI (needs `npm run build`): with the documented exit code (docs/reference/cli.md
 * "Exit codes"), one stderr line naming the cause and the setting, and no port left bound. Each
 * case runs with metrics off, metrics on, and `--workers 2`.
 *
 * "Exits at once" is not measured in wall time (starting three Node processes on a busy 2-core
 * machine takes what it takes): the drain delay and the shutdown grace are set to ten minutes,
 * so a failed start that waited on either (instead of exiting) would be killed by the watchdog
 * and fail on its exit code.
 */
const CLI = "dist/src/cli/main.js";
const work = mkdtempSync(join(tmpdir(), "riskgate-startup-"));
const demo = readFileSync("policies/demo.yaml", "utf8");

interface Outcome {
  readonly code: number | null;
  readonly stderr: string;
  readonly ms: number;
}

/** Far longer than any start takes: only a process left waiting is killed (exit code null). */
const WATCHDOG_MS = 60_000;

function serve(args: string[], env: Record<string, string>): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, "serve", ...args], {
    env: {
      ...process.env,
      RISKGATE_GEO: "off",
      RISKGATE_LOG_LEVEL: "warn",
      RISKGATE_DRAIN_DELAY_MS: "600000",
      RISKGATE_SHUTDOWN_GRACE_MS: "600000",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), WATCHDOG_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, ms: Date.now() - started });
    });
  });
}

/** True when nothing listens on the port (we can bind it ourselves). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(port, "127.0.0.1", () => resolve(srv));
  });
}

describe("a failed start exits and leaves nothing bound", () => {
  let busy: Server;
  let busyPort = 0;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    busyPort = await freePort();
    busy = await occupy(busyPort);
    const refused = await freePort(); // bound then released: connections are refused
    files.refusedJwks = join(work, "refused-jwks.yaml");
    writeFileSync(
      files.refusedJwks,
      demo.replace(
        'audiences: ["demo-api"]',
        `audiences: ["demo-api"]\n  jwks: { uri: "http://127.0.0.1:${refused}/jwks.json" }`,
      ),
    );
    files.bad = join(work, "bad.yaml");
    writeFileSync(files.bad, "version: 1\nidentity: [unclosed\n");
  });
  afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  const cases: {
    name: string;
    args: () => string[];
    env?: () => Record<string, string>;
    code: number;
    line: RegExp;
    metricsOnly?: boolean;
    /** A setting of the wrong form: the primary refuses it before any worker starts. */
    settingForm?: boolean;
  }[] = [
    {
      name: "demo policy without --dev (no JWKS)",
      args: () => [],
      code: 3,
      line: /^riskgate: RISKGATE_JWKS_UNAVAILABLE: .*identity\.jwks is not set.*--dev/m,
    },
    {
      name: "a jwks.uri that refuses connections",
      args: () => ["--policy", files.refusedJwks as string],
      code: 3,
      line: /^riskgate: RISKGATE_JWKS_UNAVAILABLE: JWKS http:\/\/127\.0\.0\.1:\d+\/jwks\.json: .*RISKGATE_POLICY/m,
    },
    {
      name: "a policy file that is not YAML",
      args: () => ["--dev", "--policy", files.bad as string],
      code: 2,
      line: /^riskgate: RISKGATE_POLICY_(UNREADABLE|INVALID): .*bad\.yaml.*RISKGATE_POLICY/m,
    },
    {
      name: "a gRPC port already in use",
      args: () => ["--dev", "--address", `127.0.0.1:${busyPort}`],
      code: 4,
      line: /^riskgate: RISKGATE_LISTEN_FAILED: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\); set RISKGATE_GRPC_ADDRESS/m,
    },
    {
      name: "a metrics port already in use",
      args: () => ["--dev"],
      env: () => ({ RISKGATE_METRICS_ADDRESS: `127.0.0.1:${busyPort}` }),
      code: 4,
      line: /^riskgate: RISKGATE_LISTEN_FAILED: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\); set RISKGATE_METRICS_ADDRESS/m,
      metricsOnly: true,
    },
    {
      name: "a REDIS_URL that is not a Redis URL",
      args: () => ["--dev"],
      env: () => ({ REDIS_URL: "http://user:hunter2@x" }),
      code: 2,
      line: /^riskgate: RISKGATE_SETTING_INVALID: REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/m,
      settingForm: true,
    },
    ...[
      ["RISKGATE_GRPC_ADDRESS", "nonsense"],
      ["RISKGATE_GRPC_ADDRESS", "127.0.0.1:99999"],
      ["RISKGATE_HTTP_ADDRESS", "nonsense"],
      ["RISKGATE_METRICS_ADDRESS", "nonsense"],
    ].map(([setting, value]) => ({
      name: `a malformed ${setting}=${value}`,
      args: () => ["--dev"],
      env: () => ({ [setting as string]: value as string }),
      code: 2,
      line: new RegExp(
        `^riskgate: RISKGATE_SETTING_INVALID: ${setting}=".*": expected host:port`,
        "m",
      ),
      settingForm: true,
    })),
  ];
  const modes = [
    { mode: "metrics off", metrics: false, workers: [] as string[] },
    { mode: "metrics on", metrics: true, workers: [] as string[] },
    { mode: "--workers 2", metrics: true, workers: ["--workers", "2"] },
  ];

  for (const { mode, metrics, workers } of modes) {
    for (const c of cases) {
      if (c.metricsOnly && !metrics) continue;
      // read before anything starts, the same in every mode
      if (c.settingForm && mode !== "metrics on") continue;
      it(
        `${c.name}, ${mode}: exit ${c.code}`,
        async () => {
          const grpcPort = await freePort();
          const metricsPort = await freePort();
          const r = await serve([...c.args(), ...workers], {
            RISKGATE_DEV_KEYS_DIR: join(work, "keys"),
            RISKGATE_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
            RISKGATE_METRICS_ADDRESS: metrics ? `127.0.0.1:${metricsPort}` : "off",
            ...c.env?.(),
          });
          expect(r.code, `${r.stderr} (after ${r.ms} ms)`).toBe(c.code);
          expect(r.stderr).toMatch(c.line);
          // riskgate's own lines only (no grpc-js line before them): one, or the worker's and the
          // primary's with --workers
          const lines = r.stderr.trimEnd().split("\n");
          for (const line of lines) expect(line).toMatch(/^riskgate: RISKGATE_[A-Z_]+: /);
          // the primary binds /metrics itself, before it forks: then there is no worker to fail
          const inWorker = workers.length > 0 && !c.metricsOnly && !c.settingForm;
          if (inWorker) {
            expect(r.stderr).toMatch(/^riskgate: RISKGATE_WORKER_FAILED: worker \d+ exited/m);
          }
          if (!inWorker) expect(lines).toHaveLength(1);
          expect(r.stderr).not.toContain("hunter2");
          expect(await portFree(grpcPort)).toBe(true);
          expect(await portFree(metricsPort)).toBe(true);
        },
        WATCHDOG_MS + 30_000,
      );
    }
  }
});

describe("--workers after start", () => {
  it("replaces a worker that dies while serving, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const child = spawn(process.execPath, [CLI, "serve", "--dev", "--workers", "2"], {
      env: {
        ...process.env,
        RISKGATE_GEO: "off",
        RISKGATE_LOG_LEVEL: "info",
        RISKGATE_AUDIT: "false",
        RISKGATE_METRICS_ADDRESS: "off",
        RISKGATE_DRAIN_DELAY_MS: "0",
        RISKGATE_DEV_KEYS_DIR: join(work, "keys"),
        RISKGATE_GRPC_ADDRESS: address,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    // each worker logs "riskgate serving" once it has told the primary so
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const servingWorkers = () => out.split('"msg":"riskgate serving"').length - 1;
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const workers = () =>
      readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8")
        .trim()
        .split(/\s+/)
        .filter((p) => p !== "")
        .map(Number);
    // a failed step leaves nothing running: the workers first, then the primary
    onTestFinished(() => {
      if (child.exitCode !== null) return;
      for (const pid of workers()) process.kill(pid, "SIGKILL");
      child.kill("SIGKILL");
    });
    const serving = async () => {
      const c = createClient(address, 500);
      try {
        return (await c.health()) === ServingStatus.SERVING;
      } catch {
        return false;
      } finally {
        c.close();
      }
    };
    // readiness waits: as long as it takes (the test's timeout bounds them), unless the
    // primary exits, which is the failure these steps watch for
    const until = async (cond: () => boolean | Promise<boolean>, what: string) => {
      while (!(await cond())) {
        if (child.exitCode !== null) throw new Error(`${what}: the primary exited`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until(() => workers().length === 2, "two workers");
    // a worker killed before it is serving is a start-up failure that stops the primary
    await until(() => servingWorkers() === 2, "both workers serving");
    await new Promise((r) => setTimeout(r, 300)); // the log line comes just before the IPC message
    await until(serving, "serving");
    const [first] = workers();
    process.kill(first as number, "SIGKILL");
    await until(() => workers().length === 2 && !workers().includes(first as number), "respawn");
    expect(child.exitCode).toBeNull();
    await until(() => servingWorkers() === 3, "the replacement serving");
    await until(serving, "serving after the respawn");
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await portFree(port)).toBe(true);
  }, 120_000);
});
