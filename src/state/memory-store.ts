import { LRUCache } from "lru-cache";
import { MAX_DISTINCT, MAX_EMPTY_BUCKETS } from "./limits.js";
import {
  assertValidOps,
  type BaselineOp,
  type BaselineReading,
  type CountOp,
  type CountReading,
  type DistinctOp,
  type MemberOp,
  type MemberReading,
  type OpResult,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
  type SwapReading,
  type WindowOp,
  type WindowReading,
} from "./store.js";

export interface MemoryStoreOptions {
  /**
   * Most caller keys kept (subjects, orgs, devices); the least recently used go first.
   * Default 200,000.
   */
  readonly maxKeys?: number;
  /**
   * Most per-address keys kept (see `isAddressTag`), in a budget of their own: anyone can
   * create them from fresh client IPs, so a flood of them must not evict callers' state.
   * Default 100,000.
   */
  readonly maxAddressKeys?: number;
  /**
   * Most set members (of `distinct` and `member` keys) and request times (of limited `window`
   * keys) kept over all keys; past it the least recently used keys go, per-address keys first.
   * Default 1,000,000.
   */
  readonly maxMembers?: number;
  /** Which key tags are per-address (default `isAddressTag`). */
  readonly isAddressTag?: (tag: string) => boolean;
}

/**
 * Key tags whose state anonymous traffic creates, one set per client IP: `ip:<address>` and the
 * anonymous subject `s:anonymous:<address>` (as the signals' `tags` and `anonymousCaller` write
 * them). Authenticated callers' tags (`s:`, `o:`, `d:`) take a token the issuer signed.
 */
export function isAddressTag(tag: string): boolean {
  return tag.startsWith("ip:") || tag.startsWith("s:anonymous:");
}

type WindowEntry = { kind: "window"; start: number; current: number; previous: number };
/**
 * A limited window's log: the times of the newest counted requests, oldest first, live from
 * `head` on (a head index rather than `shift`, so dropping the oldest costs O(1)).
 */
type LogEntry = { kind: "log"; times: number[]; head: number };
type CountEntry = { kind: "count"; count: number };
/** Members in recency order (Map order), each with its last sighting. */
type SetEntry = { kind: "distinct" | "member"; members: Map<string, number> };
type SwapEntry = { kind: "swap"; value: string };
type BaselineEntry = {
  kind: "baseline";
  bucket: number;
  current: number;
  mean: number;
  variance: number;
  samples: number;
};
type Entry = (WindowEntry | LogEntry | CountEntry | SetEntry | SwapEntry | BaselineEntry) & {
  expiresAt: number;
};

/**
 * The embedded store: one process, the Redis store's semantics, bounded memory (LRU key caps,
 * a cap on set members over all keys, and entries expiring by the clock each batch carries).
 * Callers' keys and per-address keys have separate LRU budgets, so a flood from many client
 * IPs evicts only per-address state. Its clock is `batch.now`, so tests drive time. The
 * default when no Redis is configured.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const maxMembers = options.maxMembers ?? 1_000_000;
  const isAddress = options.isAddressTag ?? isAddressTag;
  let members = 0; // set members and logged request times held by all entries
  const dispose = (e: Entry) => {
    if (e.kind === "distinct" || e.kind === "member") members -= e.members.size;
    else if (e.kind === "log") members -= e.times.length - e.head;
  };
  const callerEntries = new LRUCache<string, Entry>({ max: options.maxKeys ?? 200_000, dispose });
  const addressEntries = new LRUCache<string, Entry>({
    max: options.maxAddressKeys ?? 100_000,
    dispose,
  });
  type Entries = typeof callerEntries;

  /** The live entry of `key` of this kind; an expired one (or another kind's) is gone. */
  function live<K extends Entry["kind"]>(
    entries: Entries,
    key: string,
    kind: K,
    now: number,
  ): Extract<Entry, { kind: K }> | undefined {
    const e = entries.get(key);
    if (e === undefined) return undefined;
    if (e.kind !== kind || e.expiresAt <= now) {
      entries.delete(key);
      return undefined;
    }
    return e as Extract<Entry, { kind: K }>;
  }

  /**
   * An exact sliding window for a limit: the key logs the times of the newest `limit` counted
   * requests. A time at or before `now - windowMs` has left the window. Keeping only `limit`
   * times is enough: fewer than `limit` in the window are all among them, and `limit` of them
   * in the window means the limit is reached.
   */
  function limited(
    entries: Entries,
    key: string,
    op: WindowOp,
    limit: number,
    now: number,
  ): WindowReading {
    const edge = now - op.windowMs;
    let e = live(entries, key, "log", now);
    if (e !== undefined) {
      const before = e.head;
      while (e.head < e.times.length && (e.times[e.head] as number) <= edge) e.head++;
      members -= e.head - before;
    }
    const held = e === undefined ? 0 : e.times.length - e.head;
    const count = Math.min(held, limit) + op.cost;
    if (op.cost > 0) {
      if (e === undefined) {
        e = { kind: "log", times: [], head: 0, expiresAt: 0 };
        entries.set(key, e);
      }
      // a clock that stepped back never reorders the log: the time stays at the newest one's
      const at = Math.max(now, e.times[e.times.length - 1] ?? now);
      e.times.push(at);
      const head = Math.max(e.head, e.times.length - limit);
      members += 1 - (head - e.head);
      e.head = head;
      // the dropped head is kept until it is half the array, then copied away at once
      if (e.head > 32 && e.head * 2 > e.times.length) {
        e.times = e.times.slice(e.head);
        e.head = 0;
      }
      // gone when its newest time leaves the window
      e.expiresAt = at + op.windowMs;
    }
    const kept = e === undefined ? 0 : e.times.length - e.head;
    // room for one more once the limit-th newest time has left the window
    const resetMs =
      e !== undefined && kept >= limit
        ? (e.times[e.times.length - limit] as number) + op.windowMs - now
        : 0;
    return { count, resetMs };
  }

  function window(entries: Entries, key: string, op: WindowOp, now: number): WindowReading {
    if (op.limit !== undefined) return limited(entries, key, op, op.limit, now);
    let start = now - (now % op.windowMs);
    const e = live(entries, key, "window", now);
    if (e === undefined) {
      if (op.cost > 0) {
        const expiresAt = start + 2 * op.windowMs;
        entries.set(key, { kind: "window", start, current: op.cost, previous: 0, expiresAt });
      }
      return { count: op.cost, resetMs: start + op.windowMs - now };
    }
    // roll the stored windows forward to now (a clock that stepped back stays in the stored one)
    let current = e.current;
    let previous = e.previous;
    if (e.start < start) {
      previous = e.start === start - op.windowMs ? e.current : 0;
      current = 0;
    } else {
      start = e.start;
    }
    current += op.cost;
    if (op.cost > 0) {
      e.start = start;
      e.current = current;
      e.previous = previous;
      e.expiresAt = start + 2 * op.windowMs;
    }
    const elapsed = Math.max(0, now - start);
    const overlap = (op.windowMs - elapsed) / op.windowMs;
    return { count: current + Math.floor(previous * overlap), resetMs: start + op.windowMs - now };
  }

  function count(entries: Entries, key: string, op: CountOp, now: number): CountReading {
    let e = live(entries, key, "count", now);
    if (e === undefined) {
      e = { kind: "count", count: 0, expiresAt: now + op.ttlMs };
      entries.set(key, e);
    }
    e.count += op.cost;
    return { count: e.count };
  }

  function setEntry(
    entries: Entries,
    key: string,
    kind: SetEntry["kind"],
    now: number,
  ): SetEntry & Entry {
    let e = live(entries, key, kind, now);
    if (e === undefined) {
      e = { kind, members: new Map(), expiresAt: 0 };
      entries.set(key, e);
    }
    return e;
  }

  function distinct(entries: Entries, key: string, op: DistinctOp, now: number): CountReading {
    const e = setEntry(entries, key, "distinct", now);
    const before = e.members.size;
    e.members.delete(op.member); // re-insert: Map order is recency order
    e.members.set(op.member, now);
    for (const [m, seen] of e.members) {
      if (seen > now - op.windowMs && e.members.size <= MAX_DISTINCT) break;
      e.members.delete(m);
    }
    members += e.members.size - before;
    e.expiresAt = now + op.windowMs;
    return { count: e.members.size };
  }

  function member(entries: Entries, key: string, op: MemberOp, now: number): MemberReading {
    const e = setEntry(entries, key, "member", now);
    const before = e.members.size;
    const isNew = !e.members.has(op.member);
    e.members.delete(op.member); // re-insert: Map order is recency order
    e.members.set(op.member, now);
    while (e.members.size > op.max) {
      e.members.delete(e.members.keys().next().value as string);
    }
    members += e.members.size - before;
    e.expiresAt = now + op.ttlMs;
    return { isNew, size: e.members.size };
  }

  function swap(
    entries: Entries,
    key: string,
    value: string,
    ttlMs: number,
    now: number,
  ): SwapReading {
    const e = live(entries, key, "swap", now);
    const previous = e === undefined ? null : e.value;
    if (e === undefined) entries.set(key, { kind: "swap", value, expiresAt: now + ttlMs });
    else {
      e.value = value;
      e.expiresAt = now + ttlMs;
    }
    return { previous };
  }

  function get(entries: Entries, key: string, now: number): SwapReading {
    const e = live(entries, key, "swap", now);
    return { previous: e === undefined ? null : e.value };
  }

  function has(entries: Entries, key: string, member: string, now: number): MemberReading {
    const e = live(entries, key, "member" as SetEntry["kind"], now);
    if (e === undefined) return { isNew: true, size: 0 };
    return { isNew: !e.members.has(member), size: e.members.size };
  }

  function baseline(entries: Entries, key: string, op: BaselineOp, now: number): BaselineReading {
    const bucket = Math.floor(now / op.bucketMs);
    let e = live(entries, key, "baseline", now);
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
    e.current += op.cost;
    e.expiresAt = now + op.ttlMs;
    return { current: e.current, mean: e.mean, variance: e.variance, samples: e.samples };
  }

  function run(op: StoreOp, now: number): OpResult<StoreOp> {
    // no prefix: one process owns this map
    const key = `{${op.key.tag}}:${op.key.name}`;
    const entries = isAddress(op.key.tag) ? addressEntries : callerEntries;
    switch (op.op) {
      case "window":
        return window(entries, key, op, now);
      case "count":
        return count(entries, key, op, now);
      case "distinct":
        return distinct(entries, key, op, now);
      case "swap":
        return swap(entries, key, op.value, op.ttlMs, now);
      case "get":
        return get(entries, key, now);
      case "member":
        return member(entries, key, op, now);
      case "has":
        return has(entries, key, op.member, now);
      case "baseline":
        return baseline(entries, key, op, now);
    }
  }

  return {
    kind: "memory",
    exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      try {
        assertValidOps(batch.ops);
        const results = batch.ops.map((op) => run(op, batch.now));
        // past the member cap the least recently used keys go, per-address ones first (never
        // the last one touched)
        while (members > maxMembers && addressEntries.size > 1) addressEntries.pop();
        while (members > maxMembers && callerEntries.size > 1) callerEntries.pop();
        return Promise.resolve({ results } as StoreResult<T>);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    close: () => {
      callerEntries.clear();
      addressEntries.clear();
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
