import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BreakerState } from "../../src/circuit-breaker.js";
import { createGuardedStore } from "../../src/state/guarded-store.js";
import { createRedisStore, type StoreLogger } from "../../src/state/redis-store.js";
import { freePort } from "../helpers/free-port.js";
import { type RedisProcess, redisAvailable, startRedis } from "../helpers/redis-server.js";

const available = redisAvailable();
const op = { op: "window", key: { tag: "s:x", name: "vel" }, windowMs: 60_000, cost: 1 } as const;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function recordingLogger(): StoreLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (_obj, msg) => lines.push(msg),
    warn: (_obj, msg) => lines.push(msg),
  };
}

/**
 * Calls until one succeeds: a readiness wait, as long as reconnecting takes on a busy machine
 * (the test's timeout bounds it).
 */
async function recovers(exec: () => Promise<unknown>): Promise<boolean> {
  for (;;) {
    await sleep(50);
    if (
      await exec().then(
        () => true,
        () => false,
      )
    )
      return true;
  }
}

/**
 * A call to a store that is down ends by its own timeout (tens of ms), the open breaker or a
 * refused connection, at once; it never waits for Redis to come back. The bound is far from
 * both: far above a late timer on a loaded machine, far below waiting for a reconnection.
 */
const FAILS_FAST_MS = 5_000;

describe.runIf(available)("Redis store failures", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => {
    process.on("unhandledRejection", onUnhandled);
  });
  afterAll(() => {
    process.off("unhandledRejection", onUnhandled);
  });
  beforeEach(() => {
    unhandled.length = 0;
  });
  afterEach(() => {
    expect(unhandled).toEqual([]);
  });

  describe("a server that dies and comes back on the same port", () => {
    let server: RedisProcess;
    beforeAll(async () => {
      server = await startRedis();
    });
    afterAll(() => server?.dispose());

    it("fails fast while down (breaker opens) and recovers by itself", async () => {
      const states: BreakerState[] = [];
      const logger = recordingLogger();
      const redis = createRedisStore(
        { url: server.url, keyPrefix: "rg:", connectTimeoutMs: 500 },
        { logger },
      );
      await redis.ready();
      const guarded = createGuardedStore(
        redis,
        { timeoutMs: 50, failureThreshold: 3, resetAfterMs: 200 },
        { onStateChange: (s) => states.push(s) },
      );
      expect((await guarded.exec({ ops: [op], now: 0 })).results[0].count).toBe(1);

      await server.stop();
      const errors: unknown[] = [];
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        await guarded.exec({ ops: [op], now: 0 }).catch((e: unknown) => errors.push(e));
        expect(performance.now() - started).toBeLessThan(FAILS_FAST_MS);
      }
      expect(errors).toHaveLength(20);
      expect(
        errors.every((e) => (e as { code?: string }).code === "RISKGATE_STORE_UNAVAILABLE"),
      ).toBe(true);
      expect(guarded.breakerState).toBe("open");
      expect(errors.some((e) => /breaker is open/.test((e as Error).message))).toBe(true);

      await server.restart(); // an empty Redis: the script cache is gone too
      expect(await recovers(() => guarded.exec({ ops: [op], now: 0 }))).toBe(true);
      expect(guarded.breakerState).toBe("closed");
      expect(states).toEqual(expect.arrayContaining(["open", "half_open", "closed"]));
      // one "lost" line per outage, not one per reconnection attempt
      expect(logger.lines.filter((l) => /lost|closed/.test(l))).toHaveLength(1);
      expect(logger.lines.filter((l) => /connected/.test(l))).toHaveLength(2);
      await guarded.close();
    }, 90_000);
  });

  describe("a server that stops answering (SIGSTOP)", () => {
    let server: RedisProcess;
    beforeAll(async () => {
      server = await startRedis();
    });
    afterAll(async () => {
      server?.resume();
      await server?.dispose();
    });

    it("times calls out, opens the breaker, and closes it once the server answers again", async () => {
      const redis = createRedisStore({ url: server.url, keyPrefix: "rg:" });
      await redis.ready();
      // the breaker stays open for 2 s: the fourth call meets it open however late it runs
      const guarded = createGuardedStore(redis, {
        timeoutMs: 30,
        failureThreshold: 3,
        resetAfterMs: 2000,
      });
      await guarded.exec({ ops: [op], now: 0 });
      server.pause();
      try {
        const messages: string[] = [];
        for (let i = 0; i < 6; i++) {
          const started = performance.now();
          await guarded.exec({ ops: [op], now: 0 }).catch((e: unknown) => {
            messages.push((e as Error).message);
          });
          expect(performance.now() - started).toBeLessThan(FAILS_FAST_MS);
        }
        expect(messages.slice(0, 3)).toEqual(Array(3).fill("store call timed out after 30 ms"));
        expect(messages[3]).toMatch(/breaker is open/);
        expect(guarded.breakerState).toBe("open");
      } finally {
        server.resume();
      }
      expect(await recovers(() => guarded.exec({ ops: [op], now: 0 }))).toBe(true);
      expect(guarded.breakerState).toBe("closed");
      await guarded.close();
    }, 90_000);
  });

  describe("Redis down when riskgate starts", () => {
    it("starts anyway, fails fast, and picks Redis up when it appears", async () => {
      const port = await freePort();
      const logger = recordingLogger();
      const redis = createRedisStore(
        { url: `redis://127.0.0.1:${port}`, keyPrefix: "rg:", connectTimeoutMs: 300 },
        { logger },
      );
      await expect(redis.ready()).rejects.toMatchObject({ code: "RISKGATE_STORE_UNAVAILABLE" });
      const guarded = createGuardedStore(redis, {
        timeoutMs: 50,
        failureThreshold: 2,
        resetAfterMs: 100,
      });
      for (let i = 0; i < 4; i++) {
        const started = performance.now();
        await expect(guarded.exec({ ops: [op], now: 0 })).rejects.toMatchObject({
          code: "RISKGATE_STORE_UNAVAILABLE",
        });
        expect(performance.now() - started).toBeLessThan(FAILS_FAST_MS);
      }
      const server = await startRedis({ port });
      try {
        expect(await recovers(() => guarded.exec({ ops: [op], now: 0 }))).toBe(true);
        expect(logger.lines).toContain("redis store: connected");
      } finally {
        await guarded.close();
        await server.dispose();
      }
    }, 90_000);
  });
});
