import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store, StoreKey } from "../../src/state/store.js";

/** Time as a store sees it: the memory store's is injected, Redis's is real. */
export interface ContractClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface ContractSubject {
  readonly store: Store;
  readonly clock: ContractClock;
  /** Remaining TTL of a key in ms, when the implementation can tell (Redis PTTL). */
  ttl?(key: StoreKey): Promise<number>;
  close(): Promise<void>;
}

let unique = 0;
const k = (name: string, tag = `t${++unique}-${Date.now()}`): StoreKey => ({ tag, name });

/**
 * The store contract: the same promises from the embedded memory store and from Redis, so a
 * deployment can move between them without a change in behaviour.
 */
export function storeContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`store contract: ${name}`, () => {
    let s: ContractSubject;
    beforeAll(async () => {
      s = await make();
    });
    afterAll(() => s.close());
    const exec = <const T extends Parameters<Store["exec"]>[0]["ops"]>(ops: T) =>
      s.store.exec({ ops, now: s.clock.now() });

    it("counts in a window per key, and cost 0 only reads", async () => {
      const a = k("vel");
      const b = k("vel");
      for (let i = 0; i < 3; i++) await exec([{ op: "window", key: a, windowMs: 60_000, cost: 1 }]);
      const { results } = await exec([
        { op: "window", key: a, windowMs: 60_000, cost: 0 },
        { op: "window", key: b, windowMs: 60_000, cost: 1 },
      ]);
      expect(results[0].count).toBe(3);
      expect(results[1].count).toBe(1);
      expect(results[0].resetMs).toBeGreaterThan(0);
      expect(results[0].resetMs).toBeLessThanOrEqual(60_000);
    });

    it("forgets a window two windows later", async () => {
      const a = k("vel");
      for (let i = 0; i < 5; i++) await exec([{ op: "window", key: a, windowMs: 200, cost: 1 }]);
      await s.clock.sleep(450);
      const { results } = await exec([{ op: "window", key: a, windowMs: 200, cost: 1 }]);
      expect(results[0].count).toBe(1);
    });

    it("keeps plain counters with a TTL", async () => {
      const q = k("quota:2026-11");
      await exec([{ op: "count", key: q, cost: 1, ttlMs: 60_000 }]);
      const { results } = await exec([{ op: "count", key: q, cost: 2, ttlMs: 60_000 }]);
      expect(results[0].count).toBe(3);
      if (s.ttl) {
        const ttl = await s.ttl(q);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(60_000);
      }
    });

    it("counts distinct members in a window", async () => {
      const key = k("subjects");
      const add = (member: string) => exec([{ op: "distinct", key, member, windowMs: 60_000 }]);
      await add("alice");
      await add("bob");
      await add("alice");
      expect((await add("carol")).results[0].count).toBe(3);
      const short = k("subjects");
      await exec([{ op: "distinct", key: short, member: "x", windowMs: 150 }]);
      await s.clock.sleep(300);
      const later = await exec([{ op: "distinct", key: short, member: "y", windowMs: 150 }]);
      expect(later.results[0].count).toBe(1);
    });

    it("swaps the last seen value", async () => {
      const key = k("loc");
      const first = await exec([{ op: "swap", key, value: "48.85,2.35,1,FR", ttlMs: 60_000 }]);
      expect(first.results[0].previous).toBeNull();
      const second = await exec([{ op: "swap", key, value: "-33.87,151.21,2,AU", ttlMs: 60_000 }]);
      expect(second.results[0].previous).toBe("48.85,2.35,1,FR");
      if (s.ttl) expect(await s.ttl(key)).toBeGreaterThan(0);
    });

    it("keeps bounded member sets: new vs known, oldest evicted", async () => {
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
    });

    it("learns a request-rate baseline and shows a burst above it", async () => {
      const key = k("base");
      const bucketMs = 250;
      const hit = () => exec([{ op: "baseline", key, bucketMs, alpha: 0.2, ttlMs: 60_000 }]);
      // start each bucket's requests just after its start, so none straddles a boundary
      const nextBucket = () => s.clock.sleep(bucketMs - (s.clock.now() % bucketMs) + 10);
      await nextBucket();
      for (let b = 0; b < 12; b++) {
        await hit();
        await hit();
        await nextBucket();
      }
      let last = (await hit()).results[0];
      for (let i = 0; i < 19; i++) last = (await hit()).results[0];
      expect(last.current).toBe(20);
      expect(last.samples).toBeGreaterThanOrEqual(12);
      expect(last.mean).toBeGreaterThan(1);
      expect(last.mean).toBeLessThan(2.5);
      expect(last.variance).toBeGreaterThanOrEqual(0);
      expect(last.variance).toBeLessThan(2);
    });

    it("answers a mixed batch aligned with its ops", async () => {
      const tag = `mix-${Date.now()}`;
      const { results } = await exec([
        { op: "window", key: k("vel", tag), windowMs: 60_000, cost: 1 },
        { op: "swap", key: k("loc", tag), value: "v1", ttlMs: 60_000 },
        { op: "member", key: k("countries", tag), member: "FR", ttlMs: 60_000, max: 8 },
        { op: "count", key: k("quota", "other-tag"), cost: 5, ttlMs: 60_000 },
        { op: "distinct", key: k("subjects", "ip-tag"), member: "alice", windowMs: 60_000 },
        { op: "baseline", key: k("base", tag), bucketMs: 60_000, alpha: 0.1, ttlMs: 60_000 },
      ]);
      expect(results[0]).toMatchObject({ count: 1 });
      expect(results[1]).toEqual({ previous: null });
      expect(results[2]).toEqual({ isNew: true, size: 1 });
      expect(results[3]).toEqual({ count: 5 });
      expect(results[4]).toEqual({ count: 1 });
      expect(results[5]).toEqual({ current: 1, mean: 0, variance: 0, samples: 0 });
    });
  });
}
