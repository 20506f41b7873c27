import type { LRUCache } from "lru-cache";
import { MAX_DISTINCT, MAX_EMPTY_BUCKETS } from "./limits.js";
import type {
  BaselineOp,
  BaselineReading,
  CountOp,
  CountReading,
  DistinctOp,
  MemberOp,
  MemberReading,
  OpResult,
  StoreOp,
  SwapReading,
  WindowOp,
  WindowReading,
} from "./store.js";

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
/** What the memory store holds under one key, with its expiry by the batches' clock. */
export type Entry = (WindowEntry | LogEntry | CountEntry | SetEntry | SwapEntry | BaselineEntry) & {
  expiresAt: number;
};

/** One LRU budget of the memory store: its keys and their entries. */
export type Entries = LRUCache<string, Entry>;

/** Set members and logged request times held by all entries, over both budgets. */
export interface Tally {
  members: number;
}

/** Runs one op on `key` of `entries` at `now`, keeping `tally` in step with what it holds. */
export function applyOp(
  tally: Tally,
  entries: Entries,
  key: string,
  op: StoreOp,
  now: number,
): OpResult<StoreOp> {
  switch (op.op) {
    case "window":
      return window(tally, entries, key, op, now);
    case "count":
      return count(entries, key, op, now);
    case "distinct":
      return distinct(tally, entries, key, op, now);
    case "swap":
      return swap(entries, key, op.value, op.ttlMs, now);
    case "get":
      return get(entries, key, now);
    case "member":
      return member(tally, entries, key, op, now);
    case "has":
      return has(entries, key, op.member, now);
    case "baseline":
      return baseline(entries, key, op, now);
  }
}

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
  tally: Tally,
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
    tally.members -= e.head - before;
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
    tally.members += 1 - (head - e.head);
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

function window(
  tally: Tally,
  entries: Entries,
  key: string,
  op: WindowOp,
  now: number,
): WindowReading {
  if (op.limit !== undefined) return limited(tally, entries, key, op, op.limit, now);
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

function distinct(
  tally: Tally,
  entries: Entries,
  key: string,
  op: DistinctOp,
  now: number,
): CountReading {
  const e = setEntry(entries, key, "distinct", now);
  const before = e.members.size;
  e.members.delete(op.member); // re-insert: Map order is recency order
  e.members.set(op.member, now);
  for (const [m, seen] of e.members) {
    if (seen > now - op.windowMs && e.members.size <= MAX_DISTINCT) break;
    e.members.delete(m);
  }
  tally.members += e.members.size - before;
  e.expiresAt = now + op.windowMs;
  return { count: e.members.size };
}

function member(
  tally: Tally,
  entries: Entries,
  key: string,
  op: MemberOp,
  now: number,
): MemberReading {
  const e = setEntry(entries, key, "member", now);
  const before = e.members.size;
  const isNew = !e.members.has(op.member);
  e.members.delete(op.member); // re-insert: Map order is recency order
  e.members.set(op.member, now);
  while (e.members.size > op.max) {
    e.members.delete(e.members.keys().next().value as string);
  }
  tally.members += e.members.size - before;
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
