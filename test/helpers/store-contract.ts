import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidStoreOpError,
  type Store,
  type StoreKey,
  type StoreOp,
} from "../../src/state/store.js";

import { type ContractClock, limitContract } from "./limit-contract.js";

export { type ContractClock, realClock } from "./limit-contract.js";

export interface ContractSubject {
  readonly store: Store;
  readonly clock: ContractClock;
  /** Remaining TTL of a key in ms, when the implementation can tell (Redis PTTL: -2 = no key). */
  ttl?(key: StoreKey): Promise<number>;
  close(): Promise<void>;
}

let unique = 0;
const k = (name: string, tag = `t${++unique}-${Date.now()}`): StoreKey => ({ tag, name });

/**
 * The store contract: the same promises from the embedded memory store and from Redis (single
 * server and Cluster), so a deployment can move between them without a change in behaviour.
 * Timing: windows and TTLs are a few hundred ms with margins of 100 ms or more, so the Redis
 * runs (real time) hold on a loaded machine; the memory runs move an injected clock.
 */
export function storeContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`store contract: ${name}`, () => {
    let s: ContractSubject;
    beforeAll(async () => {
      s = await make();
    });
    afterAll(() => s?.close());
    limitContract(() => s);
    const exec = <const T extends readonly StoreOp[]>(ops: T) =>
      s.store.exec({ ops, now: s.clock.now() });
    /** Sleeps to `offset` ms after the start of the next period of `periodMs`. */
    const alignTo = (periodMs: number, offset: number) =>
      s.clock.sleep(periodMs - (s.clock.now() % periodMs) + offset);

    it("counts in a window per key; cost 0 reads without creating a key", async () => {
      const a = k("vel");
      const b = k("vel");
      for (let i = 0; i < 3; i++) await exec([{ op: "window", key: a, windowMs: 60_000, cost: 1 }]);
      const { results } = await exec([
        { op: "window", key: a, windowMs: 60_000, cost: 0 },
        { op: "window", key: b, windowMs: 60_000, cost: 2 },
        { op: "window", key: a, windowMs: 60_000, cost: 0 },
      ]);
      expect(results[0].count).toBe(3);
      expect(results[1].count).toBe(2);
      expect(results[2].count).toBe(3);
      expect(results[0].resetMs).toBeGreaterThan(0);
      expect(results[0].resetMs).toBeLessThanOrEqual(60_000);
      const never = k("failed");
      const read = await exec([{ op: "window", key: never, windowMs: 60_000, cost: 0 }]);
      expect(read.results[0].count).toBe(0);
      if (s.ttl) expect(await s.ttl(never)).toBe(-2);
    });

    it("weighs the previous window by its overlap, and forgets it a window later", async () => {
      const key = k("vel");
      const windowMs = 1000;
      await alignTo(windowMs, 20);
      await exec([{ op: "window", key, windowMs, cost: 10 }]);
      // 250 ms into the next window: 10 * 750/1000 -> 7, plus this one = 8; a late timer
      // (up to 350 ms) can only lower it towards 5, never to "no decay" (11) or "reset" (1)
      await alignTo(windowMs, 250);
      const next = (await exec([{ op: "window", key, windowMs, cost: 1 }])).results[0];
      expect(next.count).toBeGreaterThanOrEqual(5);
      expect(next.count).toBeLessThanOrEqual(8);
      expect(next.resetMs).toBeGreaterThan(0);
      expect(next.resetMs).toBeLessThanOrEqual(750);
      if (s.ttl) {
        const ttl = await s.ttl(key);
        expect(ttl).toBeGreaterThan(windowMs); // kept through the next window, which weighs it
        expect(ttl).toBeLessThanOrEqual(2 * windowMs);
      }
      // two windows on, both fixed windows are gone
      await alignTo(windowMs, 20);
      await alignTo(windowMs, 20);
      const later = (await exec([{ op: "window", key, windowMs, cost: 1 }])).results[0];
      expect(later.count).toBe(1);
    });

    it("keeps plain counters with a TTL set once, at creation", async () => {
      const q = k("quota:2026-11");
      await exec([{ op: "count", key: q, cost: 1, ttlMs: 400 }]);
      await s.clock.sleep(200);
      const second = await exec([{ op: "count", key: q, cost: 2, ttlMs: 400 }]);
      expect(second.results[0].count).toBe(3);
      if (s.ttl) {
        const ttl = await s.ttl(q);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(200); // not extended by the second op
      }
      // 500 ms after creation: expired (an extended TTL would last until 600)
      await s.clock.sleep(300);
      const third = await exec([{ op: "count", key: q, cost: 1, ttlMs: 400 }]);
      expect(third.results[0].count).toBe(1);
    });

    it("counts distinct members in a window", async () => {
      const key = k("subjects");
      const add = (member: string) => exec([{ op: "distinct", key, member, windowMs: 60_000 }]);
      await add("alice");
      await add("bob");
      await add("alice");
      expect((await add("carol")).results[0].count).toBe(3);
      if (s.ttl) expect(await s.ttl(key)).toBeLessThanOrEqual(60_000);
      const short = k("subjects");
      await exec([{ op: "distinct", key: short, member: "x", windowMs: 150 }]);
      await s.clock.sleep(300);
      const later = await exec([{ op: "distinct", key: short, member: "y", windowMs: 150 }]);
      expect(later.results[0].count).toBe(1);
    });

    it("saturates a distinct count at 10,000 members", async () => {
      const key = k("subjects");
      const ops = Array.from({ length: 10_001 }, (_, i) => ({
        op: "distinct" as const,
        key,
        member: `m${i}`,
        windowMs: 60_000,
      }));
      const { results } = await exec(ops);
      expect(results[9_999]?.count).toBe(10_000);
      expect(results[10_000]?.count).toBe(10_000);
    });

    it("swaps the last seen value", async () => {
      const key = k("loc");
      const first = await exec([{ op: "swap", key, value: "48.85,2.35,1,FR", ttlMs: 60_000 }]);
      expect(first.results[0].previous).toBeNull();
      const second = await exec([{ op: "swap", key, value: "-33.87,151.21,2,AU", ttlMs: 60_000 }]);
      expect(second.results[0].previous).toBe("48.85,2.35,1,FR");
      const third = await exec([{ op: "swap", key, value: "", ttlMs: 60_000 }]);
      expect(third.results[0].previous).toBe("-33.87,151.21,2,AU");
      const fourth = await exec([{ op: "swap", key, value: "x", ttlMs: 60_000 }]);
      expect(fourth.results[0].previous).toBe(""); // an empty value is a value, not "none"
      if (s.ttl) {
        const ttl = await s.ttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(60_000);
      }
    });

    it("keeps bounded member sets: new vs known, the stalest evicted", async () => {
      const key = k("devices");
      const add = async (member: string) => {
        const r = (await exec([{ op: "member", key, member, ttlMs: 60_000, max: 3 }])).results[0];
        await s.clock.sleep(2); // distinct timestamps: eviction order is by last sighting
        return r;
      };
      expect(await add("d1")).toEqual({ isNew: true, size: 1 });
      expect(await add("d2")).toEqual({ isNew: true, size: 2 });
      expect(await add("d1")).toEqual({ isNew: false, size: 2 });
      expect(await add("d3")).toEqual({ isNew: true, size: 3 });
      expect(await add("d4")).toEqual({ isNew: true, size: 3 }); // d2, the stalest, goes
      expect(await add("d1")).toEqual({ isNew: false, size: 3 });
      expect(await add("d2")).toEqual({ isNew: true, size: 3 });
      if (s.ttl) expect(await s.ttl(key)).toBeGreaterThan(59_000);
    });

    it("reads the last sighting without replacing it (get), and creates no key", async () => {
      const key = k("loc");
      const none = await exec([{ op: "get", key }]);
      expect(none.results[0]).toEqual({ previous: null });
      if (s.ttl) expect(await s.ttl(key)).toBe(-2);
      await exec([{ op: "swap", key, value: "52.52,13.40,1,DE", ttlMs: 60_000 }]);
      // reading twice gives the same value: a get never writes
      expect((await exec([{ op: "get", key }])).results[0]).toEqual({
        previous: "52.52,13.40,1,DE",
      });
      expect((await exec([{ op: "get", key }])).results[0]).toEqual({
        previous: "52.52,13.40,1,DE",
      });
      const swapped = await exec([{ op: "swap", key, value: "x", ttlMs: 60_000 }]);
      expect(swapped.results[0].previous).toBe("52.52,13.40,1,DE");
    });

    it("tests set membership without adding (has): no key, no TTL refresh", async () => {
      const key = k("devices");
      expect((await exec([{ op: "has", key, member: "d1" }])).results[0]).toEqual({
        isNew: true,
        size: 0,
      });
      if (s.ttl) expect(await s.ttl(key)).toBe(-2);
      await exec([{ op: "member", key, member: "d1", ttlMs: 60_000, max: 3 }]);
      const asked = await exec([
        { op: "has", key, member: "d2" },
        { op: "has", key, member: "d2" },
        { op: "has", key, member: "d1" },
      ]);
      expect(asked.results).toEqual([
        { isNew: true, size: 1 },
        { isNew: true, size: 1 }, // the first test did not add d2
        { isNew: false, size: 1 },
      ]);
    });

    it("lets a set expire although has asked about it (has refreshes nothing)", async () => {
      const key = k("countries");
      const seen = k("loc");
      await exec([
        { op: "member", key, member: "FR", ttlMs: 300, max: 5 },
        { op: "swap", key: seen, value: "a", ttlMs: 300 },
      ]);
      await s.clock.sleep(150);
      const mid = await exec([
        { op: "has", key, member: "FR" },
        { op: "get", key: seen },
      ]);
      expect(mid.results).toEqual([{ isNew: false, size: 1 }, { previous: "a" }]);
      await s.clock.sleep(250); // 400 ms after the write
      const late = await exec([
        { op: "has", key, member: "FR" },
        { op: "get", key: seen },
      ]);
      expect(late.results).toEqual([{ isNew: true, size: 0 }, { previous: null }]);
    });

    it("expires sets and last sightings by TTL, and a sighting refreshes a set's TTL", async () => {
      const seen = k("loc");
      const known = k("devices");
      const refreshed = k("countries");
      await exec([
        { op: "swap", key: seen, value: "a", ttlMs: 400 },
        { op: "member", key: known, member: "d1", ttlMs: 400, max: 5 },
        { op: "member", key: refreshed, member: "FR", ttlMs: 400, max: 5 },
      ]);
      await s.clock.sleep(250);
      await exec([{ op: "member", key: refreshed, member: "DE", ttlMs: 400, max: 5 }]);
      await s.clock.sleep(250); // 500 ms after the first sightings, 250 after the refresh
      const { results } = await exec([
        { op: "swap", key: seen, value: "b", ttlMs: 400 },
        { op: "member", key: known, member: "d1", ttlMs: 400, max: 5 },
        { op: "member", key: refreshed, member: "FR", ttlMs: 400, max: 5 },
      ]);
      expect(results[0]).toEqual({ previous: null });
      expect(results[1]).toEqual({ isNew: true, size: 1 });
      expect(results[2]).toEqual({ isNew: false, size: 2 });
    });

    it("learns a request-rate baseline and shows a burst above it", async () => {
      const key = k("base");
      const bucketMs = 250;
      const hit = () =>
        exec([{ op: "baseline", key, bucketMs, alpha: 0.2, ttlMs: 60_000, cost: 1 }]);
      // each bucket's requests start just after its start, so none straddles a boundary
      await alignTo(bucketMs, 10);
      for (let b = 0; b < 12; b++) {
        await hit();
        await hit();
        await alignTo(bucketMs, 10);
      }
      let last = (await hit()).results[0];
      for (let i = 0; i < 19; i++) last = (await hit()).results[0];
      expect(last.current).toBe(20);
      expect(last.samples).toBe(12);
      expect(last.mean).toBeCloseTo(2, 10); // steady 2 per bucket: the mean is exactly 2
      expect(last.variance).toBeCloseTo(0, 10);
      // the burst is (20 - 2) / sd far above its own normal; sd ~ 0 here, so "far"
      if (s.ttl) expect(await s.ttl(key)).toBeGreaterThan(59_000);
    });

    it("folds empty buckets in as zeros (EWMA mean and variance)", async () => {
      const key = k("base");
      const bucketMs = 200;
      const hit = () =>
        exec([{ op: "baseline", key, bucketMs, alpha: 0.5, ttlMs: 60_000, cost: 1 }]);
      await alignTo(bucketMs, 20);
      for (let b = 0; b < 3; b++) {
        for (let i = 0; i < 4; i++) await hit();
        await alignTo(bucketMs, 20);
      }
      // two empty buckets, then one request: folds 4, 0, 0 after 4, 4
      await alignTo(bucketMs, 20);
      await alignTo(bucketMs, 20);
      const r = (await hit()).results[0];
      // 4, 4, 4 -> mean 4, var 0; 0 -> mean 2, var 0.5 * (0 + 16 * 0.5) = 4;
      // 0 -> mean 1, var 0.5 * (4 + 2 * 1) = 3
      expect(r).toEqual({ current: 1, mean: 1, variance: 3, samples: 5 });
    });

    it("reads a baseline without counting (cost 0): only a counted request teaches it", async () => {
      const key = k("base");
      const bucketMs = 200;
      const op = (cost: number) =>
        exec([{ op: "baseline", key, bucketMs, alpha: 0.5, ttlMs: 60_000, cost }]);
      await alignTo(bucketMs, 20);
      for (let i = 0; i < 3; i++) await op(1);
      // a refused burst: read before each verdict, never counted after it
      for (let i = 0; i < 10; i++) expect((await op(0)).results[0]).toMatchObject({ current: 3 });
      await alignTo(bucketMs, 20);
      // the closed bucket folds in on a read too, with the 3 counted requests only
      const r = (await op(0)).results[0];
      expect(r).toEqual({ current: 0, mean: 3, variance: 0, samples: 1 });
    });

    it("answers a mixed batch aligned with its ops, across tags", async () => {
      const tag = `mix-${Date.now()}`;
      const { results } = await exec([
        { op: "window", key: k("vel", tag), windowMs: 60_000, cost: 1 },
        { op: "swap", key: k("loc", tag), value: "v1", ttlMs: 60_000 },
        { op: "member", key: k("countries", tag), member: "FR", ttlMs: 60_000, max: 8 },
        { op: "count", key: k("quota", `other-${tag}`), cost: 5, ttlMs: 60_000 },
        { op: "distinct", key: k("subjects", `ip-${tag}`), member: "alice", windowMs: 60_000 },
        {
          op: "baseline",
          key: k("base", tag),
          bucketMs: 60_000,
          alpha: 0.1,
          ttlMs: 60_000,
          cost: 1,
        },
        { op: "window", key: k("vel", `ip-${tag}`), windowMs: 60_000, cost: 3 },
      ]);
      expect(results[0]).toMatchObject({ count: 1 });
      expect(results[1]).toEqual({ previous: null });
      expect(results[2]).toEqual({ isNew: true, size: 1 });
      expect(results[3]).toEqual({ count: 5 });
      expect(results[4]).toEqual({ count: 1 });
      expect(results[5]).toEqual({ current: 1, mean: 0, variance: 0, samples: 0 });
      expect(results[6]).toMatchObject({ count: 3 });
      expect((await exec([])).results).toEqual([]);
    });

    it("rejects a malformed op as misuse (InvalidStoreOpError), touching nothing", async () => {
      const key = k("vel");
      const bad = [
        { op: "window", key, windowMs: 60_000, cost: 1 },
        { op: "window", key, windowMs: 0, cost: 1 },
      ] as const;
      await expect(exec(bad)).rejects.toBeInstanceOf(InvalidStoreOpError);
      await expect(
        exec([{ op: "window", key: { tag: "", name: "vel" }, windowMs: 1000, cost: 1 }]),
      ).rejects.toThrow(/tag/);
      await expect(
        exec([{ op: "baseline", key, bucketMs: 1000, alpha: 1.5, ttlMs: 1000, cost: 1 }]),
      ).rejects.toThrow(/alpha/);
      await expect(
        exec([{ op: "baseline", key, bucketMs: 1000, alpha: 0.5, ttlMs: 1000, cost: -1 }]),
      ).rejects.toThrow(/cost/);
      const read = await exec([{ op: "window", key, windowMs: 60_000, cost: 0 }]);
      expect(read.results[0].count).toBe(0);
    });
  });
}
