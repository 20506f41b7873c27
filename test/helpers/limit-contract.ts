import fc from "fast-check";
import { expect, it } from "vitest";
import type { Store, StoreKey, WindowOp } from "../../src/state/store.js";

/** Time as a store sees it: the memory store's is injected, Redis's is real (its TIME). */
export interface ContractClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** The store reads its own clock (Redis TIME): windows must be short and checks bracketed. */
  readonly real?: boolean;
}

/** The machine's clock, which a Redis server on the same machine reads too. */
export const realClock: ContractClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
  real: true,
};

export interface LimitSubject {
  readonly store: Store;
  readonly clock: ContractClock;
  ttl?(key: StoreKey): Promise<number>;
}

/** How a limit is held: the subject's own window counts every attempt; shared ones count served. */
type Mode = "attempts" | "served";

/** One request's fate at a limit, with the times (bounds, on a real clock) the store saw it. */
interface Arrival {
  readonly admitted: boolean;
  readonly from: number;
  readonly to: number;
  readonly resetMs: number;
}

let unique = 0;

/**
 * One request at a limit, as the velocity signal sends it: in `attempts` mode counted in the
 * deciding batch (admitted while the count, this one included, is within the limit); in
 * `served` mode read first, then counted only when admitted.
 */
async function arrive(s: LimitSubject, key: StoreKey, mode: Mode, w: number, limit: number) {
  const op = (cost: 0 | 1): WindowOp => ({ op: "window", key, windowMs: w, cost, limit });
  const from = s.clock.now();
  const r = (await s.store.exec({ ops: [op(mode === "attempts" ? 1 : 0)], now: from })).results[0];
  const count = mode === "attempts" ? r.count : r.count + 1;
  const admitted = count <= limit;
  if (admitted && mode === "served") await s.store.exec({ ops: [op(1)], now: s.clock.now() });
  // a real clock: the store read its time somewhere between these two
  const to = s.clock.real ? s.clock.now() : from;
  return { admitted, from, to, resetMs: r.resetMs } satisfies Arrival;
}

/**
 * The most requests admitted in any span shorter than `w` that are certainly in one span: on a
 * real clock an arrival is known only between `from` and `to`, so a pair counts only when the
 * later one's `to` is less than `w` after the earlier one's `from`.
 */
function mostInOneWindow(arrivals: readonly Arrival[], w: number): number {
  const admitted = arrivals.filter((a) => a.admitted);
  let most = 0;
  for (let i = 0; i < admitted.length; i++) {
    let n = 0;
    const first = admitted[i] as Arrival;
    for (let j = i; j < admitted.length; j++) {
      if ((admitted[j] as Arrival).to - first.from < w) n++;
    }
    most = Math.max(most, n);
  }
  return most;
}

/**
 * Limits held exactly (the `limit` of a window op): part of the store contract, so memory,
 * Redis and Redis Cluster hold the same promise. A minute is a minute on the injected clock
 * and 3 s on Redis's real one.
 */
export function limitContract(subject: () => LimitSubject): void {
  const minuteOf = (s: LimitSubject) => (s.clock.real ? 3_000 : 60_000);
  const freshKey = (): StoreKey => ({ tag: `lim${++unique}-${Date.now()}`, name: "rate" });

  it('holds "20 a minute" through a burst across a minute\'s edge, on every kind of window', async () => {
    // 22 requests 1.25 s apart from second 46: every 60 s span of them holds all 22, so the
    // 21st and 22nd are throttled, whatever the phase of the fixed minutes; the subject's own
    // window (every attempt counted) and a shared one (served requests only)
    const s = subject();
    const minute = minuteOf(s);
    const burst = async (mode: Mode) => {
      const key = freshKey();
      await s.clock.sleep(minute - (s.clock.now() % minute) + (minute * 46) / 60);
      // each request at its own time from the start, so a late timer delays one, not the rest
      const start = s.clock.now();
      const arrivals: Arrival[] = [];
      for (let i = 0; i < 22; i++) {
        await s.clock.sleep(Math.max(0, start + (i * minute * 1.25) / 60 - s.clock.now()));
        arrivals.push(await arrive(s, key, mode, minute, 20));
      }
      expect(arrivals.map((a) => a.admitted)).toEqual([
        ...Array<boolean>(20).fill(true),
        false,
        false,
      ]);
      // Retry-After: the 22nd may come back once the oldest request it shares a minute with
      // has left it (on the injected clock: not a millisecond before; a read counts nothing)
      const { resetMs } = arrivals[21] as Arrival;
      expect(resetMs).toBeGreaterThan(0);
      expect(resetMs).toBeLessThanOrEqual(minute);
      if (!s.clock.real && mode === "served") {
        await s.clock.sleep(resetMs - 1);
        expect((await arrive(s, key, mode, minute, 20)).admitted).toBe(false);
        await s.clock.sleep(1);
      } else {
        await s.clock.sleep(resetMs);
      }
      expect((await arrive(s, key, mode, minute, 20)).admitted).toBe(true);
      if (s.ttl) {
        const ttl = await s.ttl(key);
        expect(ttl).toBeGreaterThan(0); // the key lives while its newest request is in the window
        expect(ttl).toBeLessThanOrEqual(minute);
      }
    };
    // both sleep on one clock: on the injected one, one after the other
    if (s.clock.real) await Promise.all([burst("attempts"), burst("served")]);
    else for (const mode of ["attempts", "served"] as const) await burst(mode);
  });

  it("reads a limited window without creating a key, and forgets it a window later", async () => {
    const s = subject();
    const key = freshKey();
    const w = 400;
    const read = await s.store.exec({
      ops: [{ op: "window", key, windowMs: w, cost: 0, limit: 3 }],
      now: s.clock.now(),
    });
    expect(read.results[0]).toEqual({ count: 0, resetMs: 0 });
    if (s.ttl) expect(await s.ttl(key)).toBe(-2);
    await s.store.exec({
      ops: [{ op: "window", key, windowMs: w, cost: 1, limit: 3 }],
      now: s.clock.now(),
    });
    await s.clock.sleep(w + 100);
    if (s.ttl) expect(await s.ttl(key)).toBe(-2);
    const again = await s.store.exec({
      ops: [{ op: "window", key, windowMs: w, cost: 1, limit: 3 }],
      now: s.clock.now(),
    });
    expect(again.results[0]).toEqual({ count: 1, resetMs: 0 });
  });

  it("drops only the requests that left the window, and follows a lowered limit", async () => {
    const s = subject();
    const key = freshKey();
    const w = 1000;
    const hit = (cost: 0 | 1, limit: number) =>
      s.store.exec({ ops: [{ op: "window", key, windowMs: w, cost, limit }], now: s.clock.now() });
    for (let i = 0; i < 3; i++) await hit(1, 10);
    await s.clock.sleep(500);
    for (let i = 0; i < 4; i++) await hit(1, 10);
    await s.clock.sleep(700); // the first three have left the window, the other four have not
    expect((await hit(1, 10)).results[0]).toEqual({ count: 5, resetMs: 0 });
    // a reload lowers the limit to 3: the window is over it (3 counted, this one the 4th) until
    // the third newest request leaves it, the one of the four counted last
    const over = (await hit(0, 3)).results[0];
    expect(over.count).toBe(3);
    expect(over.resetMs).toBeGreaterThan(0);
    expect(over.resetMs).toBeLessThanOrEqual(w - 600);
  });

  it("drops exactly the requests that left the window, however many left at once", async () => {
    const s = subject();
    const w = 1000;
    // 2 and 20 leave between two requests: the oldest few read one by one, or a search past them
    for (const [gone, stay] of [
      [2, 3],
      [20, 7],
    ] as const) {
      const key = freshKey();
      const hit = (cost: 0 | 1) =>
        s.store.exec({
          ops: [{ op: "window", key, windowMs: w, cost, limit: 100 }],
          now: s.clock.now(),
        });
      for (let i = 0; i < gone; i++) await hit(1);
      await s.clock.sleep(500);
      for (let i = 0; i < stay; i++) await hit(1);
      await s.clock.sleep(700);
      expect((await hit(0)).results[0]).toEqual({ count: stay, resetMs: 0 });
      expect((await hit(1)).results[0]).toEqual({ count: stay + 1, resetMs: 0 });
    }
  });

  it("never admits more than the limit in any window span (random arrivals)", async () => {
    const s = subject();
    // Redis runs on real time, so it gets short windows and few runs
    const w = s.clock.real ? 300 : 60_000;
    // bursts (where a window estimate errs) of 1 to 6 requests, a pause of up to a window apart
    const burst = fc.record({
      pause: fc.integer({ min: 0, max: w }),
      size: fc.integer({ min: 1, max: 6 }),
      spacing: fc.integer({ min: 0, max: Math.floor(w / 40) }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom<Mode>("attempts", "served"),
        fc.array(burst, { minLength: 1, maxLength: s.clock.real ? 5 : 12 }),
        async (limit, mode, bursts) => {
          const key = freshKey();
          const arrivals: Arrival[] = [];
          for (const b of bursts) {
            for (let i = 0; i < b.size; i++) {
              await s.clock.sleep(i === 0 ? b.pause : b.spacing);
              arrivals.push(await arrive(s, key, mode, w, limit));
            }
          }
          expect(mostInOneWindow(arrivals, w)).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: s.clock.real ? 8 : 300 },
    );
  });
}
