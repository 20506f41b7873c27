import { LRUCache } from "lru-cache";
import type {
  BaselineOp,
  BaselineReading,
  MemberOp,
  MemberReading,
  OpResult,
  Store,
  StoreBatch,
  StoreOp,
  StoreResult,
  WindowReading,
} from "./store.js";
import { keyText } from "./store.js";

export interface MemoryStoreOptions {
  /** Most keys kept; the least recently used go first. Default 200,000. */
  readonly maxKeys?: number;
}

type Entry =
  | { kind: "window"; start: number; current: number; previous: number; expiresAt: number }
  | { kind: "count"; count: number; expiresAt: number }
  | { kind: "distinct"; members: Map<string, number>; expiresAt: number }
  | { kind: "swap"; value: string; expiresAt: number }
  | { kind: "member"; members: Map<string, number>; expiresAt: number }
  | {
      kind: "baseline";
      bucket: number;
      current: number;
      mean: number;
      variance: number;
      samples: number;
      expiresAt: number;
    };

/** Most members a distinct count tracks per key (the count saturates there). */
const MAX_DISTINCT = 10_000;

/** Longest run of empty buckets folded into a baseline at once (a long silence decays it fully). */
const MAX_EMPTY_BUCKETS = 1000;

/**
 * The embedded store: one process, bounded (an LRU key cap, and entries expire with the clock
 * each batch carries), with the Redis store's semantics. The default when no Redis is set.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const entries = new LRUCache<string, Entry>({ max: options.maxKeys ?? 200_000 });

  function live<K extends Entry["kind"]>(
    key: string,
    kind: K,
    now: number,
  ): Extract<Entry, { kind: K }> | undefined {
    const e = entries.get(key);
    if (e === undefined || e.kind !== kind || e.expiresAt <= now) return undefined;
    return e as Extract<Entry, { kind: K }>;
  }

  function window(key: string, windowMs: number, cost: number, now: number): WindowReading {
    const start = now - (now % windowMs);
    let e = live(key, "window", now);
    if (e === undefined || e.start <= start - 2 * windowMs) {
      e = { kind: "window", start, current: 0, previous: 0, expiresAt: 0 };
      entries.set(key, e);
    } else if (e.start < start) {
      e.previous = e.start === start - windowMs ? e.current : 0;
      e.current = 0;
      e.start = start;
    }
    e.current += cost;
    e.expiresAt = start + 2 * windowMs;
    const overlap = (windowMs - (now - start)) / windowMs;
    return { count: e.current + Math.floor(e.previous * overlap), resetMs: start + windowMs - now };
  }

  function member(key: string, op: MemberOp, now: number): MemberReading {
    let e = live(key, "member", now);
    if (e === undefined) {
      e = { kind: "member", members: new Map(), expiresAt: 0 };
      entries.set(key, e);
    }
    const isNew = !e.members.has(op.member);
    e.members.delete(op.member); // re-insert: Map order is recency order
    e.members.set(op.member, now);
    while (e.members.size > op.max) {
      const oldest = e.members.keys().next().value as string;
      e.members.delete(oldest);
    }
    e.expiresAt = now + op.ttlMs;
    return { isNew, size: e.members.size };
  }

  function baseline(key: string, op: BaselineOp, now: number): BaselineReading {
    const bucket = Math.floor(now / op.bucketMs);
    let e = live(key, "baseline", now);
    if (e === undefined) {
      e = { kind: "baseline", bucket, current: 0, mean: 0, variance: 0, samples: 0, expiresAt: 0 };
      entries.set(key, e);
    } else if (bucket > e.bucket) {
      const empty = Math.min(MAX_EMPTY_BUCKETS, bucket - e.bucket - 1);
      foldBucket(e, e.current, op.alpha);
      for (let i = 0; i < empty; i++) foldBucket(e, 0, op.alpha);
      e.bucket = bucket;
      e.current = 0;
    }
    e.current += 1;
    e.expiresAt = now + op.ttlMs;
    return { current: e.current, mean: e.mean, variance: e.variance, samples: e.samples };
  }

  function run(op: StoreOp, now: number): OpResult<StoreOp> {
    const key = keyText("", op.key);
    switch (op.op) {
      case "window":
        return window(key, op.windowMs, op.cost, now);
      case "count": {
        let e = live(key, "count", now);
        if (e === undefined) {
          e = { kind: "count", count: 0, expiresAt: now + op.ttlMs };
          entries.set(key, e);
        }
        e.count += op.cost;
        return { count: e.count };
      }
      case "distinct": {
        let e = live(key, "distinct", now);
        if (e === undefined) {
          e = { kind: "distinct", members: new Map(), expiresAt: 0 };
          entries.set(key, e);
        }
        e.members.delete(op.member); // re-insert: Map order is recency order
        e.members.set(op.member, now);
        for (const [m, seen] of e.members) {
          if (seen > now - op.windowMs && e.members.size <= MAX_DISTINCT) break;
          e.members.delete(m);
        }
        e.expiresAt = now + op.windowMs;
        return { count: e.members.size };
      }
      case "swap": {
        const e = live(key, "swap", now);
        const previous = e === undefined ? null : e.value;
        entries.set(key, { kind: "swap", value: op.value, expiresAt: now + op.ttlMs });
        return { previous };
      }
      case "member":
        return member(key, op, now);
      case "baseline":
        return baseline(key, op, now);
    }
  }

  return {
    kind: "memory",
    exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      const results = batch.ops.map((op) => run(op, batch.now));
      return Promise.resolve({ results } as StoreResult<T>);
    },
    close: () => {
      entries.clear();
      return Promise.resolve();
    },
  };
}

/** Folds one closed bucket's count into an EWMA mean and variance (West's incremental form). */
export function foldBucket(
  b: { mean: number; variance: number; samples: number },
  count: number,
  alpha: number,
): void {
  if (b.samples === 0) {
    b.mean = count;
    b.variance = 0;
  } else {
    const diff = count - b.mean;
    const incr = alpha * diff;
    b.mean += incr;
    b.variance = (1 - alpha) * (b.variance + diff * incr);
  }
  b.samples += 1;
}
