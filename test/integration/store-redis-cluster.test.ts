import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisStore, type RedisStore } from "../../src/state/redis-store.js";
import { keyText, type StoreOp } from "../../src/state/store.js";
import { type RedisCluster, redisAvailable, startRedisCluster } from "../helpers/redis-server.js";
import { realClock, storeContract } from "../helpers/store-contract.js";

const available = redisAvailable();

describe.runIf(available)("Redis store (3-master Redis Cluster)", () => {
  storeContract("redis cluster (3 masters)", async () => {
    const cluster = await startRedisCluster();
    const store = createRedisStore({ clusterNodes: cluster.nodes, keyPrefix: "rgtest:" });
    await store.ready();
    return {
      store,
      clock: realClock,
      // PTTL through the cluster client: it follows the key to its master
      ttl: (key) => (store.client as Redis).pttl(keyText("rgtest:", key)),
      async close() {
        await store.close();
        await cluster.stop();
      },
    };
  });

  describe("a batch mixing tags", () => {
    let cluster: RedisCluster;
    let store: RedisStore;
    let admins: Map<number, Redis>;
    /** Three tags whose keys live on three different masters. */
    const tags: string[] = [];

    beforeAll(async () => {
      cluster = await startRedisCluster();
      store = createRedisStore({ clusterNodes: cluster.nodes, keyPrefix: "rg:" });
      await store.ready();
      admins = new Map(cluster.members.map((m) => [m.port, new Redis(m.url)]));
      const ports = new Set<number>();
      for (let i = 0; i < 200 && tags.length < 3; i++) {
        const tag = `s:user${i}`;
        const port = await cluster.portOf(keyText("rg:", { tag, name: "vel" }));
        if (!ports.has(port)) {
          ports.add(port);
          tags.push(tag);
        }
      }
      expect(tags).toHaveLength(3);
    });
    afterAll(async () => {
      for (const a of admins?.values() ?? []) a.disconnect();
      await store?.close();
      await cluster?.stop();
    });

    const opsFor = (tags: readonly string[]): StoreOp[] =>
      tags.flatMap((tag): StoreOp[] => [
        { op: "window", key: { tag, name: "vel" }, windowMs: 60_000, cost: 1 },
        { op: "member", key: { tag, name: "devices" }, member: "d1", ttlMs: 60_000, max: 5 },
      ]);
    /** Scripts each master ran since RESETSTAT (EVAL: a command's first use on a connection). */
    const scriptsPerNode = async (commands = ["evalsha"]) => {
      const out: number[] = [];
      for (const admin of admins.values()) {
        const stats = await admin.info("commandstats");
        let n = 0;
        for (const c of commands) {
          n += Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
        }
        out.push(n);
      }
      return out;
    };

    it("sends one EVALSHA per tag, each to the master of its slot, and keeps op order", async () => {
      // interleave the tags' ops: results must still line up with the ops
      const ops = opsFor(tags);
      const mixed = [ops[0], ops[2], ops[4], ops[1], ops[3], ops[5]] as StoreOp[];
      await store.exec({ ops: mixed, now: Date.now() }); // first use of each connection: EVAL
      for (const admin of admins.values()) await admin.config("RESETSTAT");
      const { results } = await store.exec({ ops: mixed, now: Date.now() });
      expect(results).toEqual([
        { count: 2, resetMs: expect.any(Number) },
        { count: 2, resetMs: expect.any(Number) },
        { count: 2, resetMs: expect.any(Number) },
        { isNew: false, size: 1 },
        { isNew: false, size: 1 },
        { isNew: false, size: 1 },
      ]);
      expect(await scriptsPerNode()).toEqual([1, 1, 1]);
      // each tag's keys sit on its own master, with a TTL
      for (const tag of tags) {
        for (const name of ["vel", "devices"]) {
          const key = keyText("rg:", { tag, name });
          const admin = admins.get(await cluster.portOf(key)) as Redis;
          const ttl = await admin.pttl(key);
          expect(ttl).toBeGreaterThan(0);
          expect(ttl).toBeLessThanOrEqual(120_000);
        }
      }
    });

    it("carries held writes on the next deciding batch's script of each tag", async () => {
      const s = createRedisStore({
        clusterNodes: cluster.nodes,
        keyPrefix: "rgcarry:",
        writeDelayMs: 60_000,
      });
      await s.ready();
      await s.exec({ ops: opsFor(tags), now: Date.now() }); // first use of each connection: EVAL
      for (const admin of admins.values()) await admin.config("RESETSTAT");
      const seen = (tag: string, cost: number): StoreOp => ({
        op: "window",
        key: { tag, name: "seen" },
        windowMs: 60_000,
        cost,
      });
      const written = s.exec({
        ops: tags.map((t) => seen(t, 1)),
        now: Date.now(),
        background: true,
      });
      const read = await s.exec({ ops: tags.map((t) => seen(t, 0)), now: Date.now() });
      // the writes went first, in the same script per tag: read there, no script of their own
      expect(read.results.map((r) => (r as { count: number }).count)).toEqual([1, 1, 1]);
      expect((await written).results).toHaveLength(3);
      expect(await scriptsPerNode()).toEqual([1, 1, 1]);
      await s.close();
    });

    it.each([
      ["written as made (the default)", false],
      ["per-node auto-pipelines", true],
    ])("answers many concurrent batches of every group size: %s", async (_, autoPipelining) => {
      // a store of its own per mode (its own keys: the counts below start from zero)
      const s = createRedisStore({
        clusterNodes: cluster.nodes,
        keyPrefix: autoPipelining ? "rgap:" : "rgw:",
        autoPipelining,
      });
      await s.ready();
      // group sizes 1..20 (past 16 a tag's ops go in two scripts), all in flight together
      const sized = (n: number): StoreOp[] =>
        tags.flatMap((tag) =>
          Array.from(
            { length: n },
            (_, j): StoreOp => ({
              op: "window",
              key: { tag, name: `w${j}` },
              windowMs: 60_000,
              cost: 1,
            }),
          ),
        );
      for (const admin of admins.values()) await admin.config("RESETSTAT");
      const pending = Array.from({ length: 100 }, (_, i) =>
        s.exec({ ops: sized((i % 20) + 1), now: Date.now() }),
      );
      expect(s.client.autoPipelineQueueSize > 0).toBe(autoPipelining);
      const all = await Promise.all(pending);
      all.forEach((r, i) => {
        expect(r.results).toHaveLength(3 * ((i % 20) + 1));
      });
      // every batch of size n counted key w0 of each tag once: 100 increments per tag
      const last = await s.exec({ ops: sized(1), now: Date.now() });
      expect(last.results.map((r) => (r as { count: number }).count)).toEqual([101, 101, 101]);
      const scripts = (await scriptsPerNode(["evalsha", "eval"])).reduce((a, b) => a + b, 0);
      // one script per tag per batch, a second one for the 20 batches of 17..20 ops, + `last`
      expect(scripts).toBe(3 * (100 + 20 + 1));
      await s.close();
    });
  });
});
