import { describe, expect, it } from "vitest";
import { createMemoryStore, foldBucket } from "../../src/state/memory-store.js";
import type { StoreKey } from "../../src/state/store.js";
import { storeContract } from "../helpers/store-contract.js";

storeContract("memory", async () => {
  let now = Date.UTC(2026, 10, 22, 12, 0, 0);
  return {
    store: createMemoryStore(),
    clock: {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    },
    close: async () => {},
  };
});

describe("memory store specifics", () => {
  const key: StoreKey = { tag: "s:alice", name: "vel" };
  const t0 = 60_000 * 1000; // a window start

  it("weighs the previous window by its remaining overlap (sliding window counter)", async () => {
    const store = createMemoryStore();
    for (let i = 0; i < 10; i++) {
      await store.exec({ ops: [{ op: "window", key, windowMs: 60_000, cost: 1 }], now: t0 + 1000 });
    }
    // 15 s into the next window: 10 * 45/60 = 7.5 -> 7, plus this request
    const r = await store.exec({
      ops: [{ op: "window", key, windowMs: 60_000, cost: 1 }],
      now: t0 + 75_000,
    });
    expect(r.results[0]).toEqual({ count: 8, resetMs: 45_000 });
  });

  it("keeps counting in the stored window when the clock steps back", async () => {
    const store = createMemoryStore();
    const hit = (now: number) =>
      store.exec({ ops: [{ op: "window", key, windowMs: 60_000, cost: 1 }], now });
    await hit(t0 + 60_500); // window 2
    const back = await hit(t0 + 59_900); // 600 ms back, into window 1
    expect(back.results[0].count).toBe(2); // not a roll-over that drops window 2's count
    const on = await hit(t0 + 61_000);
    expect(on.results[0]).toEqual({ count: 3, resetMs: 59_000 });
  });

  it("stays bounded by its key cap", async () => {
    const store = createMemoryStore({ maxKeys: 100 });
    for (let i = 0; i < 1000; i++) {
      await store.exec({
        ops: [{ op: "window", key: { tag: `s:${i}`, name: "vel" }, windowMs: 60_000, cost: 1 }],
        now: 1,
      });
    }
    // the first keys were evicted: counting again starts at 1; the last ones are still there
    const r = await store.exec({
      ops: [
        { op: "window", key: { tag: "s:0", name: "vel" }, windowMs: 60_000, cost: 1 },
        { op: "window", key: { tag: "s:999", name: "vel" }, windowMs: 60_000, cost: 1 },
      ],
      now: 1,
    });
    expect(r.results[0].count).toBe(1);
    expect(r.results[1].count).toBe(2);
  });

  it("stays bounded by its cap on set members over all keys", async () => {
    const store = createMemoryStore({ maxMembers: 100 });
    const add = (subject: number, device: number) =>
      store.exec({
        ops: [
          {
            op: "member",
            key: { tag: `s:${subject}`, name: "devices" },
            member: `d${device}`,
            ttlMs: 60_000,
            max: 50,
          },
        ],
        now: 1,
      });
    for (let subject = 0; subject < 10; subject++) {
      for (let device = 0; device < 20; device++) await add(subject, device);
    }
    // 200 members were added; the least recently used subjects' sets went to stay under 100
    expect((await add(0, 0)).results[0]).toEqual({ isNew: true, size: 1 });
    expect((await add(9, 0)).results[0]).toEqual({ isNew: false, size: 20 });
  });

  it("keeps a limit's log in order when the clock steps back, and counts it", async () => {
    const store = createMemoryStore();
    const rate: StoreKey = { tag: "s:alice", name: "rate" };
    const hit = (now: number) =>
      store.exec({ ops: [{ op: "window", key: rate, windowMs: 60_000, cost: 1, limit: 3 }], now });
    await hit(t0 + 10_000);
    await hit(t0 + 9_000); // a second back: logged at 10 s, not before the first
    expect((await hit(t0 + 11_000)).results[0]).toEqual({ count: 3, resetMs: 59_000 });
    // the two at 10 s leave together: at 70 s only the one at 11 s is left
    expect((await hit(t0 + 70_000)).results[0]).toEqual({ count: 2, resetMs: 0 });
  });

  it("counts a limit's logged times against its cap on members over all keys", async () => {
    const store = createMemoryStore({ maxMembers: 100 });
    const hit = (subject: number) =>
      store.exec({
        ops: [
          {
            op: "window",
            key: { tag: `s:${subject}`, name: "rate" },
            windowMs: 60_000,
            cost: 1,
            limit: 50,
          },
        ],
        now: 1,
      });
    for (let subject = 0; subject < 10; subject++) {
      for (let i = 0; i < 20; i++) await hit(subject);
    }
    // 200 times were logged; the least recently used subjects' logs went to stay under 100
    expect((await hit(0)).results[0].count).toBe(1);
    expect((await hit(9)).results[0].count).toBe(21);
  });

  it("does not count expired entries", async () => {
    const store = createMemoryStore();
    const devices = { tag: "s:bob", name: "devices" };
    const add = (now: number) =>
      store.exec({
        ops: [{ op: "member", key: devices, member: "d1", ttlMs: 1000, max: 5 }],
        now,
      });
    expect((await add(0)).results[0].isNew).toBe(true);
    expect((await add(999)).results[0].isNew).toBe(false); // refreshed to 1999
    expect((await add(1998)).results[0].isNew).toBe(false);
    expect((await add(2998)).results[0].isNew).toBe(true);
  });

  it("folds buckets into an exponentially weighted mean and variance", () => {
    const b = { mean: 0, variance: 0, samples: 0 };
    for (const c of [10, 10, 10, 10]) foldBucket(b, c, 0.5);
    expect(b).toEqual({ mean: 10, variance: 0, samples: 4 });
    foldBucket(b, 20, 0.5);
    expect(b.mean).toBe(15);
    expect(b.variance).toBe(25);
  });

  it("caps a long silence at 1000 empty buckets", async () => {
    const store = createMemoryStore();
    const op = { op: "baseline", key, bucketMs: 1000, alpha: 0.01, ttlMs: 1e12, cost: 1 } as const;
    await store.exec({ ops: [op], now: 0 });
    const r = await store.exec({ ops: [op], now: 1e9 }); // a million buckets later
    expect(r.results[0].samples).toBe(1001);
    expect(r.results[0].mean).toBeCloseTo(1 * 0.99 ** 1000, 12);
  });
});
