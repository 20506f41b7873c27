import { describe, expect, it } from "vitest";
import type { BreakerState } from "../../src/circuit-breaker.js";
import { createGuardedStore } from "../../src/state/guarded-store.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store, StoreBatch, StoreResult } from "../../src/state/store.js";
import { block, echoPair } from "../helpers/socket-reply.js";

const op = { op: "window", key: { tag: "t", name: "n" }, windowMs: 1000, cost: 1 } as const;

/** An inner store whose calls stay pending until the test settles them. */
function scripted() {
  const memory = createMemoryStore();
  const pending: {
    batch: StoreBatch;
    resolve(r: StoreResult): void;
    reject(e: unknown): void;
  }[] = [];
  const store: Store = {
    kind: "redis",
    exec: (batch) =>
      new Promise((resolve, reject) => {
        pending.push({
          batch,
          resolve: resolve as (r: StoreResult) => void,
          reject,
        });
      }),
    close: async () => {},
  };
  const take = (index: number) => {
    const [p] = pending.splice(index, 1);
    if (p === undefined) throw new Error(`no pending call #${index} at the inner store`);
    return p;
  };
  return {
    store,
    calls: () => pending.length,
    /** Answers pending call #index (0: the oldest). */
    async succeed(index = 0) {
      const p = take(index);
      p.resolve((await memory.exec(p.batch)) as StoreResult);
    },
    fail(err: unknown = new Error("ECONNREFUSED"), index = 0) {
      take(index).reject(err);
    },
  };
}

function guard(inner: Store, hooks: Parameters<typeof createGuardedStore>[2] = {}) {
  let now = 0;
  const states: BreakerState[] = [];
  const guarded = createGuardedStore(
    inner,
    { timeoutMs: 10_000, failureThreshold: 3, resetAfterMs: 1000, clock: () => now },
    {
      ...hooks,
      onStateChange: (s) => {
        states.push(s);
        hooks.onStateChange?.(s);
      },
    },
  );
  return {
    guarded,
    states,
    advance: (ms: number) => {
      now += ms;
    },
    exec: () => guarded.exec({ ops: [op], now }),
  };
}

describe("guarded store", () => {
  it("opens after consecutive failures, fails fast, probes once and closes again", async () => {
    const inner = scripted();
    const g = guard(inner.store);
    for (let i = 0; i < 3; i++) {
      const call = g.exec();
      inner.fail();
      await expect(call).rejects.toMatchObject({ code: "RISKGATE_STORE_UNAVAILABLE" });
    }
    expect(g.guarded.breakerState).toBe("open");
    await expect(g.exec()).rejects.toThrow(/breaker is open/);
    expect(inner.calls()).toBe(0); // open: the store is not called
    g.advance(1000);
    const probe = g.exec();
    expect(g.guarded.breakerState).toBe("half_open");
    await inner.succeed();
    await expect(probe).resolves.toBeDefined();
    expect(g.guarded.breakerState).toBe("closed");
    expect(g.states).toEqual(["open", "half_open", "closed"]);
  });

  it("counts only consecutive failures", async () => {
    const inner = scripted();
    const g = guard(inner.store);
    for (const outcome of ["fail", "fail", "ok", "fail", "fail"] as const) {
      const call = g.exec().catch(() => undefined);
      if (outcome === "ok") await inner.succeed();
      else inner.fail();
      await call;
    }
    expect(g.guarded.breakerState).toBe("closed");
  });

  it("lets one probe through at a time; only the probe's outcome moves the breaker", async () => {
    const inner = scripted();
    const g = guard(inner.store);
    const straggler = g.exec().catch((e: unknown) => e); // sent while closed, answers late
    for (let i = 0; i < 3; i++) {
      const call = g.exec();
      inner.fail(new Error("down"), 1);
      await expect(call).rejects.toThrow(/down/);
    }
    expect(g.guarded.breakerState).toBe("open");
    g.advance(1000);
    const probe = g.exec();
    expect(inner.calls()).toBe(2); // the straggler and the probe
    await expect(g.exec()).rejects.toThrow(/probe in flight/);
    inner.fail(new Error("late"), 0); // the straggler fails: not the probe, nothing moves
    await straggler;
    expect(g.guarded.breakerState).toBe("half_open");
    await expect(g.exec()).rejects.toThrow(/probe in flight/);
    inner.fail(new Error("still down"), 0); // the probe fails: open again, timer restarts
    await expect(probe).rejects.toThrow(/still down/);
    expect(g.guarded.breakerState).toBe("open");
    g.advance(999);
    await expect(g.exec()).rejects.toThrow(/breaker is open/);
    g.advance(1);
    const second = g.exec();
    await inner.succeed();
    await expect(second).resolves.toBeDefined();
    expect(g.guarded.breakerState).toBe("closed");
    expect(g.states).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  it("counts failures of calls that were in flight together once", async () => {
    const inner = scripted();
    const g = guard(inner.store);
    // a stall: five calls in flight fail together (threshold 3)
    const burst = Array.from({ length: 5 }, () => g.exec());
    for (const call of burst) {
      inner.fail(new Error("stall"));
      await expect(call).rejects.toThrow(/stall/);
    }
    expect(g.guarded.breakerState).toBe("closed");
    // two calls in flight; the second fails first and counts (2 of 3)...
    const overlapping = g.exec();
    const second = g.exec();
    inner.fail(new Error("down"), 1);
    await expect(second).rejects.toThrow(/down/);
    // ...and the first, in flight when that failure came back, fails next: it does not count
    inner.fail(new Error("late"));
    await expect(overlapping).rejects.toThrow(/late/);
    expect(g.guarded.breakerState).toBe("closed");
    // the next call, started after it, is the third consecutive failure
    const third = g.exec();
    inner.fail(new Error("down"));
    await expect(third).rejects.toThrow(/down/);
    expect(g.guarded.breakerState).toBe("open");
    expect(g.states).toEqual(["open"]);
  });

  it("does not close on a late success of a call sent before the breaker opened", async () => {
    const inner = scripted();
    const g = guard(inner.store);
    const early = g.exec();
    for (let i = 0; i < 3; i++) {
      const call = g.exec();
      inner.fail(new Error("down"), 1);
      await expect(call).rejects.toThrow(/down/);
    }
    expect(g.guarded.breakerState).toBe("open");
    await inner.succeed(0);
    await expect(early).resolves.toBeDefined(); // its caller gets the answer
    expect(g.guarded.breakerState).toBe("open"); // but the probe decides, later
  });

  it("times a hanging call out", async () => {
    const hanging: Store = {
      kind: "redis",
      exec: () => new Promise(() => {}),
      close: async () => {},
    };
    const errors: unknown[] = [];
    const guarded = createGuardedStore(
      hanging,
      { timeoutMs: 20, failureThreshold: 5, resetAfterMs: 1000 },
      { onError: (e) => errors.push(e) },
    );
    await expect(guarded.exec({ ops: [op], now: 0 })).rejects.toMatchObject({
      code: "RISKGATE_STORE_UNAVAILABLE",
      details: { timeoutMs: 20 },
      message: "store call timed out after 20 ms",
    });
    expect(errors).toHaveLength(1);
  });

  it("does not time out a call whose reply arrived while the event loop was busy", async () => {
    const echo = await echoPair();
    const memory = createMemoryStore();
    // the reply comes over a socket from another process, as Redis's does
    const remote: Store = {
      kind: "redis",
      exec: (batch) => echo.ask().then(() => memory.exec(batch)),
      close: async () => {},
    };
    const guarded = createGuardedStore(remote, {
      timeoutMs: 10,
      failureThreshold: 1,
      resetAfterMs: 1000,
    });
    try {
      const call = guarded.exec({ ops: [op], now: 0 });
      block(40); // a burst of Checks or a GC pause: the timeout falls due meanwhile
      await expect(call).resolves.toMatchObject({ results: [{ count: 1 }] });
      expect(guarded.breakerState).toBe("closed");
    } finally {
      await echo.close();
    }
  });

  it("reports every call and error to hooks, and survives hooks that throw", async () => {
    const inner = scripted();
    const calls: boolean[] = [];
    const errors: unknown[] = [];
    const g = guard(inner.store, {
      onCall: (ms, ok) => {
        expect(ms).toBeGreaterThanOrEqual(0);
        calls.push(ok);
        throw new Error("metrics bug");
      },
      onError: (e) => {
        errors.push(e);
        throw new Error("logger bug");
      },
      onStateChange: () => {
        throw new Error("observer bug");
      },
    });
    const ok = g.exec();
    await inner.succeed();
    await expect(ok).resolves.toBeDefined();
    const cause = new Error("READONLY You can't write against a read only replica.");
    const bad = g.exec();
    inner.fail(cause);
    await expect(bad).rejects.toMatchObject({
      code: "RISKGATE_STORE_UNAVAILABLE",
      message: `store call failed: ${cause.message}`,
      cause,
    });
    expect(calls).toEqual([true, false]);
    expect(errors).toEqual([cause]);
  });

  it("passes misuse through without counting it against the store", async () => {
    const g = guard(createMemoryStore());
    for (let i = 0; i < 5; i++) {
      await expect(
        g.guarded.exec({ ops: [{ ...op, windowMs: -1 }], now: 0 }),
      ).rejects.toMatchObject({ name: "InvalidStoreOpError" });
    }
    expect(g.guarded.breakerState).toBe("closed");
    await expect(g.exec()).resolves.toBeDefined();
  });
});
