import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { Pipeline } from "../../src/access/pipeline.js";
import { buildCheckRequest } from "../../src/cli/check.js";
import { createClient } from "../../src/cli/client.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createMetrics } from "../../src/telemetry/metrics.js";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.js";
import type { CheckResponseMessage } from "../../src/transport/check-response.js";
import { createCheckHandler } from "../../src/transport/envoy-grpc.js";
import { loadProtos } from "../../src/transport/protos.js";
import { httpCall } from "../helpers/http-call.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * A server under more Checks than it can decide in time answers the excess at once rather than
 * queueing every caller past the time budget, and does not decide Checks nobody waits for.
 * Everything over real gRPC (and HTTP) on loopback; no wall-clock race decides an outcome.
 */

// the demo policy with a budget long enough that held Checks are only ever released by the test
const demo = readFileSync("policies/demo.yaml", "utf8").replace(
  "budget_ms: 100",
  "budget_ms: 10000",
);

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** A memory store whose deciding calls wait until `release()`. */
function heldStore(): Store & {
  /** From now on deciding calls are held (the warm-up's read before SERVING is not). */
  arm(): void;
  held(): number;
  /** Resolves once `n` deciding calls are held. */
  holding(n: number): Promise<void>;
  release(): void;
} {
  const memory = createMemoryStore();
  let held = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let released = false;
  let armed = false;
  return {
    kind: "memory",
    async exec(batch) {
      if (armed && !released && batch.background !== true) {
        held++;
        for (const w of waiters) if (held >= w.n) w.resolve();
        await gate;
      }
      return memory.exec(batch);
    },
    close: () => memory.close(),
    arm: () => {
      armed = true;
    },
    held: () => held,
    holding: (n) =>
      new Promise<void>((resolve) => {
        if (held >= n) resolve();
        else waiters.push({ n, resolve });
      }),
    release() {
      released = true;
      release();
    },
  };
}

/** riskgate's own counters as Prometheus prints them on /metrics. */
async function scrape(telemetry: Telemetry): Promise<string> {
  const port = telemetry.metricsPort;
  if (port === undefined) throw new Error("metrics not served");
  return (await httpCall(port, "/metrics")).body;
}

/** Resolves once `n` of the promises have settled. */
function settled(promises: readonly Promise<unknown>[], n: number): Promise<void> {
  let done = 0;
  return new Promise((resolve) => {
    for (const p of promises) {
      void p.then(
        () => ++done === n && resolve(),
        () => ++done === n && resolve(),
      );
    }
  });
}

describe("load shedding above RISKGATE_MAX_IN_FLIGHT", () => {
  it("answers the overflow of a burst at once, decides the admitted, loses none", async () => {
    const limit = 4;
    const burst = 12;
    const store = heldStore();
    const telemetry = createTelemetry(
      {
        tracing: { enabled: false, subjectAttribute: "off" },
        metrics: { enabled: true, address: "127.0.0.1:0" },
        audit: { enabled: false, allowSampleRate: 1, subject: "hash" },
      },
      { logger: createLogger("silent") },
    );
    await telemetry.start();
    open.push(() => telemetry.shutdown());
    const s: TestServer = await startTestServer({
      policyText: demo,
      store,
      telemetry,
      settings: { maxInFlight: limit },
    });
    open.push(() => s.stop());
    store.arm();
    const token = await s.token({ sub: "ann", tier: "pro", org: "acme", amr: ["mfa"] });
    const check = () =>
      s.client.check(
        buildCheckRequest({
          method: "GET",
          path: "/v1/items",
          host: "api.example.com",
          ip: "203.0.113.7",
          headers: {},
          token,
        }),
      );

    const calls = Array.from({ length: burst }, check);
    const outcomes = calls.map((c) =>
      c.then(
        (res: CheckResponseMessage) => ({ answered: "decided" as const, code: res.status.code }),
        (err: grpc.ServiceError) => ({ answered: "refused" as const, code: err.code }),
      ),
    );
    // the shed Checks come back while the admitted ones are still held in the store: at once,
    // not after a place frees up
    await Promise.all([settled(outcomes, burst - limit), store.holding(limit)]);
    expect(store.held()).toBe(limit);
    // the HTTP listener shares the bound: a forward-auth request now is shed too
    const port = s.app.httpPort() as number;
    const http = await httpCall(port, "/auth/forward", {
      "x-forwarded-method": "GET",
      "x-forwarded-host": "api.example.com",
      "x-forwarded-uri": "/v1/items",
      authorization: `Bearer ${token}`,
    });
    expect(http.status).toBe(503);
    expect(http.headers["retry-after"]).toBe("1");

    store.release();
    const all = await Promise.all(outcomes);
    const refused = all.filter((o) => o.answered === "refused");
    const decided = all.filter((o) => o.answered === "decided");
    expect(refused).toHaveLength(burst - limit);
    for (const r of refused) expect(r.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(decided).toEqual(Array(limit).fill({ answered: "decided", code: grpc.status.OK }));

    // places are given back: the next Check is decided
    expect((await check()).status.code).toBe(grpc.status.OK);
    const metrics = await scrape(telemetry);
    expect(metrics).toContain(`riskgate_checks_shed_total{transport="grpc"} ${burst - limit}`);
    expect(metrics).toContain(`riskgate_checks_shed_total{transport="http"} 1`);
    expect(metrics).toMatch(/riskgate_checks_in_flight 0\n/);
  });
});

describe("a Check whose caller has gone", () => {
  /**
   * A Check server on the real handler whose deadline clock reads `skewMs` ahead: with an hour,
   * every call's deadline has passed by the time the handler runs, as on a machine so starved
   * that calls are read long after they were sent (without a race against grpc-js's own timer).
   */
  async function checkServer(
    pipeline: Pipeline,
    runtime: TestServer["app"]["current"],
    skewMs: number,
  ) {
    const metrics = createMetrics();
    const decided: unknown[] = [];
    const server = new grpc.Server();
    server.addService(loadProtos().authorization.service, {
      Check: createCheckHandler({
        pipeline,
        runtime,
        clock: Date.now,
        now: () => Date.now() + skewMs,
        logger: createLogger("silent"),
        trustedHops: 0,
        onDecision: (e) => decided.push(e),
        onRefused: metrics.refused,
      }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    open.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    return { port, metrics, decided };
  }

  it("is dropped before the pipeline runs once its deadline has passed, and counted", async () => {
    const s = await startTestServer({ policyText: demo });
    open.push(() => s.stop());
    let evaluated = 0;
    const counting: Pipeline = {
      evaluate: (runtime, req, trace) => {
        evaluated++;
        return s.app.pipeline.evaluate(runtime, req, trace);
      },
    };
    const token = await s.token({ sub: "ann", tier: "pro", org: "acme", amr: ["mfa"] });
    const request = buildCheckRequest({
      method: "GET",
      path: "/v1/items",
      host: "api.example.com",
      ip: "203.0.113.7",
      headers: {},
      token,
    });

    const late = await checkServer(counting, () => s.app.current(), 3_600_000);
    const client = createClient(`127.0.0.1:${late.port}`, 10_000);
    open.push(async () => client.close());
    await expect(client.check(request)).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    expect(evaluated).toBe(0);
    expect(late.decided).toEqual([]);
    const text = await late.metrics.registry.getSingleMetricAsString(
      "riskgate_checks_dropped_total",
    );
    expect(text).toContain('riskgate_checks_dropped_total{reason="deadline",transport="grpc"} 1');

    // the same call with its deadline ahead is decided
    const onTime = await checkServer(counting, () => s.app.current(), 0);
    const patient = createClient(`127.0.0.1:${onTime.port}`, 10_000);
    open.push(async () => patient.close());
    expect((await patient.check(request)).status.code).toBe(grpc.status.OK);
    expect(evaluated).toBe(1);
    expect(onTime.decided).toHaveLength(1);
  });
});
