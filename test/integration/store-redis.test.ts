import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGuardedStore } from "../../src/state/guarded-store.js";
import { createRedisStore } from "../../src/state/redis-store.js";
import { keyText, type StoreOp } from "../../src/state/store.js";
import {
  type RedisProcess,
  redisAvailable,
  startRedis,
  startRedisCluster,
} from "../helpers/redis-server.js";
import { storeContract } from "../helpers/store-contract.js";

const available = redisAvailable();
const realClock = {
  now: () => Date.now(),
  sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
};

describe.runIf(available)("Redis store", () => {
  storeContract("redis (single server)", async () => {
    const server = await startRedis();
    const store = createRedisStore({ url: server.url, keyPrefix: "rgtest:" });
    await store.ready();
    const admin = new Redis(server.url);
    return {
      store,
      clock: realClock,
      ttl: (key) => admin.pttl(keyText("rgtest:", key)),
      async close() {
        admin.disconnect();
        await store.close();
        await server.stop();
      },
    };
  });

  storeContract("redis cluster (3 masters)", async () => {
    const cluster = await startRedisCluster();
    const store = createRedisStore({ clusterNodes: cluster.nodes, keyPrefix: "rgtest:" });
    await store.ready();
    return {
      store,
      clock: realClock,
      async close() {
        await store.close();
        await cluster.stop();
      },
    };
  });

  describe("one round trip", () => {
    let server: RedisProcess;
    beforeAll(async () => {
      server = await startRedis();
    });
    afterAll(() => server.stop());

    it("runs a whole batch as exactly one EVALSHA", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rg:" });
      await store.ready();
      const admin = new Redis(server.url);
      const ops: StoreOp[] = [
        { op: "window", key: { tag: "s:alice", name: "vel" }, windowMs: 60_000, cost: 1 },
        { op: "window", key: { tag: "o:acme", name: "vel" }, windowMs: 60_000, cost: 1 },
        { op: "swap", key: { tag: "s:alice", name: "loc" }, value: "x", ttlMs: 60_000 },
        {
          op: "member",
          key: { tag: "s:alice", name: "devices" },
          member: "d1",
          ttlMs: 60_000,
          max: 5,
        },
      ];
      await store.exec({ ops, now: Date.now() }); // loads the script (EVALSHA miss -> EVAL)
      await admin.config("RESETSTAT");
      for (let i = 0; i < 10; i++) await store.exec({ ops, now: Date.now() });
      const stats = await admin.info("commandstats");
      const calls = (name: string) =>
        Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      expect(calls("evalsha")).toBe(10);
      expect(calls("eval")).toBe(0);
      expect(calls("hset")).toBe(20); // the script's own commands run inside those calls
      // every key has a TTL and the subject's keys share one hash tag
      const keys = (await admin.keys("rg:*")).sort();
      expect(keys).toEqual([
        "rg:{o:acme}:vel",
        "rg:{s:alice}:devices",
        "rg:{s:alice}:loc",
        "rg:{s:alice}:vel",
      ]);
      for (const key of keys) expect(await admin.pttl(key)).toBeGreaterThan(0);
      admin.disconnect();
      await store.close();
    });

    it("reloads the script after SCRIPT FLUSH (NOSCRIPT fallback)", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rg:" });
      await store.ready();
      const op = { op: "count", key: { tag: "q", name: "n" }, cost: 1, ttlMs: 60_000 } as const;
      await store.exec({ ops: [op], now: 0 });
      const admin = new Redis(server.url);
      await admin.script("FLUSH");
      const r = await store.exec({ ops: [op], now: 0 });
      expect(r.results[0].count).toBe(2);
      admin.disconnect();
      await store.close();
    });
  });

  describe("Redis stopped mid-test", () => {
    let server: RedisProcess;
    beforeAll(async () => {
      server = await startRedis();
    });
    afterAll(() => server.stop());

    it("fails fast while down (breaker opens) and recovers by itself when it returns", async () => {
      const states: string[] = [];
      const op = {
        op: "window",
        key: { tag: "s:x", name: "vel" },
        windowMs: 60_000,
        cost: 1,
      } as const;
      const guardedRedis = createRedisStore({
        url: server.url,
        keyPrefix: "rg:",
        connectTimeoutMs: 500,
      });
      await guardedRedis.ready();
      const guarded = createGuardedStore(
        guardedRedis,
        { timeoutMs: 50, failureThreshold: 3, resetAfterMs: 200 },
        { onStateChange: (s) => states.push(s) },
      );
      expect((await guarded.exec({ ops: [op], now: 0 })).results[0].count).toBe(1);

      await server.stop();
      const errors: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        await guarded.exec({ ops: [op], now: 0 }).catch((e: unknown) => errors.push(e));
        expect(performance.now() - started).toBeLessThan(500);
      }
      expect(errors).toHaveLength(5);
      expect(
        errors.every((e) => (e as { code?: string }).code === "RISKGATE_STORE_UNAVAILABLE"),
      ).toBe(true);
      expect(guarded.breakerState).toBe("open");

      await server.restart();
      const until = Date.now() + 10_000;
      let recovered = false;
      while (!recovered && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        recovered = await guarded.exec({ ops: [op], now: 0 }).then(
          () => true,
          () => false,
        );
      }
      expect(recovered).toBe(true);
      expect(guarded.breakerState).toBe("closed");
      expect(states).toContain("open");
      await guarded.close();
    }, 30_000);
  });
});
