import { rmSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStoreFromSettings } from "../../src/state/create-store.js";
import { createRedisStore } from "../../src/state/redis-store.js";
import { keyText, type StoreOp } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import {
  makeTlsFiles,
  type RedisProcess,
  redisAvailable,
  startRedis,
  type TlsFiles,
} from "../helpers/redis-server.js";
import { realClock, storeContract } from "../helpers/store-contract.js";

const available = redisAvailable();

/** Calls of one command since the last CONFIG RESETSTAT. */
async function calls(admin: Redis, command: string): Promise<number> {
  const stats = await admin.info("commandstats");
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

describe.runIf(available)("Redis store (single server)", () => {
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
        await server.dispose();
      },
    };
  });

  describe("one round trip", () => {
    let server: RedisProcess;
    let admin: Redis;
    beforeAll(async () => {
      server = await startRedis();
      admin = new Redis(server.url);
    });
    afterAll(async () => {
      admin?.disconnect();
      await server?.dispose();
    });

    const checkOps: StoreOp[] = [
      { op: "window", key: { tag: "s:alice", name: "rate" }, windowMs: 60_000, cost: 1, limit: 20 },
      { op: "window", key: { tag: "o:acme", name: "rate" }, windowMs: 60_000, cost: 1, limit: 300 },
      {
        op: "window",
        key: { tag: "ip:127.0.0.1", name: "rate" },
        windowMs: 60_000,
        cost: 1,
        limit: 300,
      },
      { op: "window", key: { tag: "ip:127.0.0.1", name: "failed" }, windowMs: 600_000, cost: 1 },
      { op: "swap", key: { tag: "s:alice", name: "loc" }, value: "x", ttlMs: 60_000 },
      {
        op: "member",
        key: { tag: "s:alice", name: "devices" },
        member: "d1",
        ttlMs: 60_000,
        max: 5,
      },
      {
        op: "member",
        key: { tag: "s:alice", name: "countries" },
        member: "FR",
        ttlMs: 60_000,
        max: 5,
      },
      {
        op: "distinct",
        key: { tag: "ip:127.0.0.1", name: "subjects" },
        member: "alice",
        windowMs: 60_000,
      },
      {
        op: "baseline",
        key: { tag: "s:alice", name: "base" },
        bucketMs: 60_000,
        alpha: 0.1,
        ttlMs: 60_000,
        cost: 1,
      },
      { op: "count", key: { tag: "o:acme", name: "quota:2026-11" }, cost: 1, ttlMs: 60_000 },
    ];

    it("runs a whole batch as exactly one EVALSHA, every key under its tag with a TTL", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rg:" });
      await store.ready();
      await store.exec({ ops: checkOps, now: Date.now() }); // first call on a connection: EVAL
      await admin.config("RESETSTAT");
      for (let i = 0; i < 10; i++) await store.exec({ ops: checkOps, now: Date.now() });
      expect(await calls(admin, "evalsha")).toBe(10);
      expect(await calls(admin, "eval")).toBe(0);
      expect(await calls(admin, "script")).toBe(0);
      // the script's own commands, inside those calls: the limits log one time each, the
      // failed-attempt window and the baseline are hashes
      expect(await calls(admin, "rpush")).toBe(30);
      expect(await calls(admin, "hset")).toBe(20);
      const keys = (await admin.keys("rg:*")).sort();
      expect(keys).toEqual([
        "rg:{ip:127.0.0.1}:failed",
        "rg:{ip:127.0.0.1}:rate",
        "rg:{ip:127.0.0.1}:subjects",
        "rg:{o:acme}:quota:2026-11",
        "rg:{o:acme}:rate",
        "rg:{s:alice}:base",
        "rg:{s:alice}:countries",
        "rg:{s:alice}:devices",
        "rg:{s:alice}:loc",
        "rg:{s:alice}:rate",
      ]);
      for (const key of keys) {
        const ttl = await admin.pttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(key.endsWith(":failed") ? 1_200_000 : 120_000);
      }
      // a limit's log holds the newest `limit` times, no more: 11 requests, limit 20
      expect(await admin.llen("rg:{s:alice}:rate")).toBe(11);
      await store.close();
    });

    it("sends the background batches held together as one EVALSHA, each with its results", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rgbg:" });
      await store.ready();
      await store.exec({ ops: checkOps, now: Date.now() });
      await admin.config("RESETSTAT");
      // the writes after 50 verdicts, held together: one round trip, not 50
      const pending = Array.from({ length: 50 }, (_, i) =>
        store.exec({
          ops: [
            { op: "window", key: { tag: `s:w${i}`, name: "vel" }, windowMs: 60_000, cost: i + 1 },
            { op: "window", key: { tag: "o:shared", name: "vel" }, windowMs: 60_000, cost: 1 },
          ],
          now: Date.now(),
          background: true,
        }),
      );
      const results = await Promise.all(pending);
      expect(await calls(admin, "evalsha")).toBe(1);
      // each batch reads its own ops' results, in order
      expect(results.map((r) => (r.results[0] as { count: number }).count)).toEqual(
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      const shared = results.map((r) => (r.results[1] as { count: number }).count);
      expect(shared).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      // a foreground batch is never held back for them
      await admin.config("RESETSTAT");
      await store.exec({ ops: checkOps, now: Date.now() });
      expect(await calls(admin, "evalsha")).toBe(1);
      await store.close();
    });

    it("carries the writes after a verdict on the next deciding script: one EVALSHA per Check", async () => {
      // a delay no test run reaches, so only a deciding script (or close) can send the writes
      const store = createRedisStore({
        url: server.url,
        keyPrefix: "rgcarry:",
        writeDelayMs: 60_000,
      });
      await store.ready();
      await store.exec({ ops: checkOps, now: Date.now() });
      await admin.config("RESETSTAT");
      const seen = { op: "window", key: { tag: "s:bob", name: "seen" }, windowMs: 60_000 } as const;
      let written: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < 10; i++) {
        // read, decide, then write what the verdict allows, nothing awaited after the answer
        const read = await store.exec({
          ops: [...checkOps, { ...seen, cost: 0 }],
          now: Date.now(),
        });
        // each read sees every write of the Checks before it
        expect((read.results[checkOps.length] as { count: number }).count).toBe(i);
        written = store.exec({ ops: [{ ...seen, cost: 1 }], now: Date.now(), background: true });
      }
      expect(await calls(admin, "evalsha")).toBe(10);
      // the last Check's writes are still held; close sends them, and they keep their results
      await store.close();
      expect(await written).toEqual({ results: [{ count: 10, resetMs: expect.any(Number) }] });
      expect(await calls(admin, "evalsha")).toBe(11);
      expect(await admin.hget("rgcarry:{s:bob}:seen", "c")).toBe("10");
    });

    it("sends held writes alone when no deciding script comes", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rgidle:", writeDelayMs: 1 });
      await store.ready();
      const op = { op: "count", key: { tag: "q", name: "n" }, cost: 1, ttlMs: 60_000 } as const;
      const r = await store.exec({ ops: [op], now: 0, background: true });
      expect(r.results[0].count).toBe(1);
      expect(await admin.get("rgidle:{q}:n")).toBe("1");
      await store.close();
    });

    it.each([
      ["written as made (the default)", undefined],
      ["auto-pipelined", true],
    ])("answers concurrent batches %s, one EVALSHA each", async (_, autoPipelining) => {
      const store = createRedisStore({
        url: server.url,
        keyPrefix: autoPipelining ? "rgap:" : "rg:",
        ...(autoPipelining === undefined ? {} : { autoPipelining }),
      });
      await store.ready();
      await store.exec({ ops: checkOps, now: Date.now() });
      await admin.config("RESETSTAT");
      const pending = Array.from({ length: 50 }, () =>
        store.exec({ ops: checkOps, now: Date.now() }),
      );
      // auto-pipelined scripts wait for the next event-loop turn; otherwise each is written at once
      expect(store.client.autoPipelineQueueSize).toBe(autoPipelining ? 50 : 0);
      // the tick's scripts leave in one socket write, once the tick's work is done
      const stream = (store.client as Redis).stream;
      expect(stream.writableCorked).toBe(1);
      await new Promise((r) => process.nextTick(r));
      expect(stream.writableCorked).toBe(0);
      const results = await Promise.all(pending);
      expect(results.map((r) => r.results.length)).toEqual(Array(50).fill(checkOps.length));
      expect(await calls(admin, "evalsha")).toBe(50);
      const counts = results
        .map((r) => (r.results[1] as { count: number }).count) // the org's, under its limit
        .sort((a, b) => a - b);
      expect(new Set(counts).size).toBe(50); // each saw its own increment: atomic per batch
      await store.close();
    });

    it("reloads the script after SCRIPT FLUSH (NOSCRIPT fallback)", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rg:" });
      await store.ready();
      const op = { op: "count", key: { tag: "q", name: "n" }, cost: 1, ttlMs: 60_000 } as const;
      await store.exec({ ops: [op], now: 0 });
      await admin.script("FLUSH");
      await admin.config("RESETSTAT");
      const r = await store.exec({ ops: [op], now: 0 });
      expect(r.results[0].count).toBe(2);
      expect(await calls(admin, "evalsha")).toBe(1); // refused with NOSCRIPT
      expect(await calls(admin, "eval")).toBe(1); // then sent whole, once
      await store.close();
    });

    it("refuses a key prefix that would break hash tags", () => {
      expect(() => createRedisStore({ url: server.url, keyPrefix: "rg:{x}:" })).toThrow(TypeError);
    });
  });

  describe("TLS and password", () => {
    let server: RedisProcess;
    let files: TlsFiles;
    let ca: string;
    beforeAll(async () => {
      files = await makeTlsFiles();
      ca = files.ca;
      server = await startRedis({ tls: files, password: "s3cret pass" });
    });
    afterAll(async () => {
      await server?.dispose();
      if (files) rmSync(files.dir, { recursive: true, force: true });
    });

    it("is wired from settings: rediss:// URL, password and CA file settings", async () => {
      const store = await createStoreFromSettings(
        {
          redisUrl: `rediss://localhost:${server.port}`,
          redisPassword: "s3cret pass",
          redisTlsCaFile: files.caFile,
          redisClusterNodes: "",
          redisSentinels: "",
          redisSentinelName: "mymaster",
          redisKeyPrefix: "rg:",
          storeTimeoutMs: 1000,
          storeBreakerFailures: 5,
          storeBreakerResetMs: 1000,
        },
        createLogger("silent"),
      );
      const r = await store.exec({
        ops: [{ op: "swap", key: { tag: "s:tls", name: "loc" }, value: "v", ttlMs: 60_000 }],
        now: Date.now(),
      });
      expect(r.results[0]).toEqual({ previous: null });
      await store.close();
    });

    it("connects over TLS with a private CA and the URL's password", async () => {
      expect(server.url).toMatch(/^rediss:\/\/:s3cret%20pass@127\.0\.0\.1:/);
      const store = createRedisStore({
        url: server.url,
        tls: { ca, servername: "localhost" },
        keyPrefix: "rg:",
      });
      await store.ready();
      const r = await store.exec({
        ops: [{ op: "window", key: { tag: "s:tls", name: "vel" }, windowMs: 60_000, cost: 1 }],
        now: Date.now(),
      });
      expect(r.results[0].count).toBe(1);
      await store.close();
    });

    it("takes the password from its own option over the URL's", async () => {
      const url = server.url.replace(/\/\/[^@]*@/, "//:wrong@");
      const store = createRedisStore({
        url,
        password: "s3cret pass",
        tls: { ca, servername: "localhost" },
        keyPrefix: "rg:",
      });
      await store.ready();
      await store.close();
    });

    it("fails to start with a wrong password (RISKGATE_STORE_UNAVAILABLE)", async () => {
      const store = createRedisStore({
        url: server.url,
        password: "wrong",
        tls: { ca, servername: "localhost" },
        keyPrefix: "rg:",
        connectTimeoutMs: 1000,
      });
      await expect(store.ready()).rejects.toMatchObject({ code: "RISKGATE_STORE_UNAVAILABLE" });
      await store.close();
    });

    it("refuses a server whose certificate it cannot verify", async () => {
      const store = createRedisStore({ url: server.url, keyPrefix: "rg:", connectTimeoutMs: 1000 });
      await expect(store.ready()).rejects.toMatchObject({ code: "RISKGATE_STORE_UNAVAILABLE" });
      await store.close();
    });
  });
});
