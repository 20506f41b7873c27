import { describe, expect, it } from "vitest";
import { createGuardedStore } from "../../src/state/guarded-store.js";
import { createMemoryStore, foldBucket } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
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
  const key = { tag: "s:alice", name: "vel" };

  it("weighs the previous window by its remaining overlap (sliding window counter)", async () => {
    const store = createMemoryStore();
    const t0 = 60_000 * 1000;
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

  it("stays bounded by its key cap", async () => {
    const store = createMemoryStore({ maxKeys: 100 });
    for (let i = 0; i < 1000; i++) {
      await store.exec({
        ops: [{ op: "window", key: { tag: `s:${i}`, name: "vel" }, windowMs: 60_000, cost: 1 }],
        now: 1,
      });
    }
    // the first keys were evicted: counting again starts at 1
    const r = await store.exec({
      ops: [{ op: "window", key: { tag: "s:0", name: "vel" }, windowMs: 60_000, cost: 1 }],
      now: 1,
    });
    expect(r.results[0].count).toBe(1);
  });

  it("folds buckets into an exponentially weighted mean and variance", () => {
    const b = { mean: 0, variance: 0, samples: 0 };
    for (const c of [10, 10, 10, 10]) foldBucket(b, c, 0.5);
    expect(b).toEqual({ mean: 10, variance: 0, samples: 4 });
    foldBucket(b, 20, 0.5);
    expect(b.mean).toBe(15);
    expect(b.variance).toBe(25);
  });
});

describe("guarded store", () => {
  const op = { op: "window", key: { tag: "t", name: "n" }, windowMs: 1000, cost: 1 } as const;
  function flaky() {
    let fail = true;
    let calls = 0;
    const store: Store = {
      kind: "redis",
      exec: (batch) => {
        calls++;
        return fail ? Promise.reject(new Error("ECONNREFUSED")) : createMemoryStore().exec(batch);
      },
      close: async () => {},
    };
    return {
      store,
      heal: () => {
        fail = false;
      },
      calls: () => calls,
    };
  }

  it("opens after repeated failures, fails fast, probes once and closes again", async () => {
    let now = 0;
    const states: string[] = [];
    const inner = flaky();
    const guarded = createGuardedStore(
      inner.store,
      { timeoutMs: 50, failureThreshold: 3, resetAfterMs: 1000, clock: () => now },
      { onStateChange: (s) => states.push(s) },
    );
    for (let i = 0; i < 3; i++) {
      await expect(guarded.exec({ ops: [op], now })).rejects.toMatchObject({
        code: "RISKGATE_STORE_UNAVAILABLE",
      });
    }
    expect(guarded.breakerState).toBe("open");
    await expect(guarded.exec({ ops: [op], now })).rejects.toThrow(/breaker is open/);
    expect(inner.calls()).toBe(3); // open: the store is not called
    now += 1000;
    inner.heal();
    await expect(guarded.exec({ ops: [op], now })).resolves.toBeDefined();
    expect(guarded.breakerState).toBe("closed");
    expect(states).toEqual(["open", "half_open", "closed"]);
  });

  it("times a hanging call out", async () => {
    const hanging: Store = {
      kind: "redis",
      exec: () => new Promise(() => {}),
      close: async () => {},
    };
    const guarded = createGuardedStore(hanging, {
      timeoutMs: 20,
      failureThreshold: 5,
      resetAfterMs: 1000,
    });
    await expect(guarded.exec({ ops: [op], now: 0 })).rejects.toThrow(/timed out after 20 ms/);
  });
});
