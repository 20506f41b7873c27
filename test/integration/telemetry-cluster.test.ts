import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { collectClusterMetrics } from "../../src/telemetry/metrics-cluster.js";
import { serveMetrics } from "../../src/telemetry/metrics-server.js";

/** Built code: the worker processes run what `npm run build` compiled (as the CLI tests do). */
const TELEMETRY = resolve("dist/src/telemetry/telemetry.js");
const LOGGER = resolve("dist/src/telemetry/logger.js");

/**
 * A `--workers` worker as far as metrics go: telemetry answering the primary over IPC (and
 * serving nothing itself), after `checks` decisions' worth of hooks.
 */
const WORKER = `
import { createTelemetry } from ${JSON.stringify(TELEMETRY)};
import { createLogger } from ${JSON.stringify(LOGGER)};
const checks = Number(process.argv[2]);
const telemetry = createTelemetry(
  {
    tracing: { enabled: false, subjectAttribute: "off" },
    metrics: { enabled: true, address: "127.0.0.1:0" },
    audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
  },
  { logger: createLogger("silent"), primary: process },
);
await telemetry.start();
for (let i = 0; i < checks; i++) telemetry.inflight(1);
telemetry.breakerState(checks > 2 ? "open" : "half_open");
process.send({ ready: telemetry.metricsPort ?? null });
process.on("disconnect", () => telemetry.shutdown());
`;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

async function worker(checks: number): Promise<ChildProcess> {
  const dir = mkdtempSync(join(tmpdir(), "riskgate-cluster-"));
  const script = join(dir, "worker.mjs");
  writeFileSync(script, WORKER);
  const child = fork(script, [String(checks)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.push(child);
  const ready = await new Promise<{ ready: number | null }>((done, fail) => {
    child.once("message", (m) => done(m as { ready: number | null }));
    child.once("exit", (code) => fail(new Error(`worker exited (${code}) before it was ready`)));
  });
  expect(ready.ready).toBeNull(); // a worker serves no /metrics port of its own
  return child;
}

describe("--workers: one /metrics for the whole process group", () => {
  it("the primary's endpoint serves the sum of its workers' metrics", async () => {
    expect(existsSync(TELEMETRY), "run `npm run build` first (npm test does)").toBe(true);
    const workers = [await worker(2), await worker(3)];
    const server = await serveMetrics("127.0.0.1:0", () => collectClusterMetrics(workers, 2000));
    try {
      const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      expect(text).toMatch(/^riskgate_checks_in_flight 5$/m);
      expect(text).toMatch(/^riskgate_store_breaker_state 2$/m); // the worst worker's state
      expect(text).toMatch(/^# TYPE riskgate_decisions_total counter$/m);
    } finally {
      await server.close();
    }
  });
});
