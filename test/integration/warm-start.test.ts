import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { buildCheckRequest, describeResponse } from "../../src/cli/check.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry } from "../../src/telemetry/telemetry.js";
import { ServingStatus } from "../../src/transport/health.js";
import { httpCall } from "../helpers/http-call.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * A cold process paid for first use on its first Checks (100-149 ms on a starved machine, past
 * the 100 ms budget). The server warms each part before health says SERVING, and the warm-up is
 * nobody's decision: no audit line, no metric.
 */
const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

describe("a warm start", () => {
  it("has run the store script before SERVING, and decides the first Check", async () => {
    const memory = createMemoryStore();
    let health: (() => number) | undefined;
    const seen: { serving: boolean; background: boolean }[] = [];
    const store: Store = {
      kind: "memory",
      exec(batch) {
        seen.push({
          serving: health?.() === ServingStatus.SERVING,
          background: batch.background === true,
        });
        return memory.exec(batch);
      },
      close: () => memory.close(),
    };
    const audit: string[] = [];
    const telemetry = createTelemetry(
      {
        tracing: { enabled: false, subjectAttribute: "off" },
        metrics: { enabled: true, address: "127.0.0.1:0" },
        audit: {
          enabled: true,
          allowSampleRate: 1,
          subject: "plain",
          destination: new Writable({
            write(chunk, _enc, done) {
              audit.push(String(chunk));
              done();
            },
          }),
        },
      },
      { logger: createLogger("silent") },
    );
    await telemetry.start();
    open.push(() => telemetry.shutdown());
    const starting = startTestServer({ store, telemetry });
    const s: TestServer = await starting;
    open.push(() => s.stop());
    health = s.app.health.get;
    // the store's script went out (a read) before the server said SERVING
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((c) => !c.serving && !c.background)).toBe(true);
    const warmCalls = seen.length;

    // the quick start's challenge example, as the first Check
    const token = await s.token({ sub: "bob", tier: "enterprise", amr: ["pwd"] });
    const started = performance.now();
    const res = await s.client.check(
      buildCheckRequest({
        method: "GET",
        path: "/admin/users",
        host: "api.example.com",
        ip: "81.2.69.160",
        headers: {},
        token,
      }),
    );
    const ms = performance.now() - started;
    expect(res.status.code, `first Check took ${ms.toFixed(1)} ms`).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(describeResponse(res).body).not.toContain("failure.budget");
    expect(seen.length).toBeGreaterThan(warmCalls);

    // the warm-up decided nothing anyone records: one audit line, one decision in the metrics
    await telemetry.flush();
    const lines = audit.join("").split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ decision: "challenge", subject: "bob" });
    const metrics = (await httpCall(telemetry.metricsPort as number, "/metrics")).body;
    const decisions = metrics
      .split("\n")
      .filter((l) => l.startsWith("riskgate_decisions_total{"))
      .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
    expect(decisions).toBe(1);
  });
});
