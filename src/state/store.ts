/**
 * The state store port. One call, one round trip: a Check gathers every counter it needs into
 * one batch, and the store answers all of them at once (memory: synchronously; Redis: one
 * EVALSHA, or on Redis Cluster one EVALSHA per hash-tag group, sent together).
 * Implementations: `memory-store.ts` (embedded default) and `redis-store.ts` (shared by
 * replicas); `guarded-store.ts` adds the timeout and circuit breaker. docs/state.md has the
 * algorithms, key layout and TTLs.
 *
 * Time: the memory store uses `batch.now` (tests inject it); the Redis store uses the Redis
 * server's clock (`TIME` in the script), so replicas with drifting clocks agree on windows.
 */

/** A key: `tag` groups keys that must live in one Redis Cluster slot (e.g. "s:alice"). */
export interface StoreKey {
  readonly tag: string;
  readonly name: string;
}

/**
 * A request count over the last `windowMs`. `cost: 0` reads without counting (and creates no
 * key).
 *
 * Without `limit`: a sliding-window counter, O(1) per key, that estimates the count (the
 * current fixed window plus the previous one weighted by how much of it still overlaps). Its
 * estimate is off when the previous window's requests were not spread evenly, so it serves
 * scores (paces, failed attempts), never a limit.
 *
 * With `limit`: an exact sliding window for a limit of `limit` requests per `windowMs`. The key
 * keeps the times of the newest `limit` counted requests, so the count is exact up to the
 * limit (past it, it reads `limit` plus this op's cost), and no span of `windowMs` ever admits
 * more than `limit` requests whatever the phase of a burst. `cost` is then 0 or 1.
 */
export interface WindowOp {
  readonly op: "window";
  readonly key: StoreKey;
  readonly windowMs: number;
  /** Amount to add (0 reads without counting). */
  readonly cost: number;
  /** The limit this window enforces: makes it exact (see above). */
  readonly limit?: number;
}

/**
 * Plain counter with a TTL (quotas per calendar period: the period is in the key name). The TTL
 * is set when the key is created and not extended after.
 */
export interface CountOp {
  readonly op: "count";
  readonly key: StoreKey;
  readonly cost: number;
  readonly ttlMs: number;
}

/** Distinct members seen in the last window (including this one). */
export interface DistinctOp {
  readonly op: "distinct";
  readonly key: StoreKey;
  readonly member: string;
  readonly windowMs: number;
}

/** Get-and-set with a TTL (last seen location). */
export interface SwapOp {
  readonly op: "swap";
  readonly key: StoreKey;
  readonly value: string;
  readonly ttlMs: number;
}

/**
 * Reads what `swap` stored, without replacing it (the last sighting, read before the verdict;
 * the pipeline writes it back with `swap` only when the verdict allows). Creates no key.
 */
export interface GetOp {
  readonly op: "get";
  readonly key: StoreKey;
}

/**
 * Tests membership of a `member` set without adding to it (`isNew`: not in the set; `size`:
 * the set's size now). Creates no key and refreshes no TTL.
 */
export interface HasOp {
  readonly op: "has";
  readonly key: StoreKey;
  readonly member: string;
}

/** Bounded set (known devices, countries): oldest evicted past `max`, TTL refreshed. */
export interface MemberOp {
  readonly op: "member";
  readonly key: StoreKey;
  readonly member: string;
  readonly ttlMs: number;
  readonly max: number;
}

/**
 * Request-rate baseline: counts requests per bucket; when a bucket closes its count updates
 * an exponentially weighted mean and variance (empty buckets in between count as zeros).
 * `cost` is what this op adds to the open bucket: 0 reads (closed buckets still fold in), so a
 * request can be judged against the baseline before the verdict and counted only after it.
 */
export interface BaselineOp {
  readonly op: "baseline";
  readonly key: StoreKey;
  readonly bucketMs: number;
  readonly alpha: number;
  readonly ttlMs: number;
  readonly cost: number;
}

export interface WindowReading {
  /** Requests in the sliding window, including this one (an estimate without a limit). */
  readonly count: number;
  /**
   * With a limit: milliseconds until the window has room for one more request than it counts
   * now (0 when it has room), which is when a throttled caller may retry. Without one:
   * milliseconds until the current fixed window rolls over.
   */
  readonly resetMs: number;
}
export interface CountReading {
  readonly count: number;
}
export interface SwapReading {
  readonly previous: string | null;
}
export interface MemberReading {
  readonly isNew: boolean;
  readonly size: number;
}
export interface BaselineReading {
  /** Requests counted in the open bucket, this op's cost included. */
  readonly current: number;
  readonly mean: number;
  readonly variance: number;
  /** Closed buckets folded into the baseline. */
  readonly samples: number;
}

export type StoreOp =
  | WindowOp
  | CountOp
  | DistinctOp
  | SwapOp
  | GetOp
  | MemberOp
  | HasOp
  | BaselineOp;

/** The result type of one op. */
export type OpResult<O extends StoreOp> = O extends WindowOp
  ? WindowReading
  : O extends CountOp | DistinctOp
    ? CountReading
    : O extends SwapOp | GetOp
      ? SwapReading
      : O extends MemberOp | HasOp
        ? MemberReading
        : O extends BaselineOp
          ? BaselineReading
          : never;

export interface StoreBatch<T extends readonly StoreOp[] = readonly StoreOp[]> {
  readonly ops: T;
  /** The decision's clock (ms since epoch). */
  readonly now: number;
  /**
   * Nothing waits on this batch to decide (the writes after a verdict): a store may hold it
   * back briefly and send it with the next deciding batch (before that batch's ops, so it is
   * read there), so that a Check costs one round trip. Its ops are still applied in order,
   * its results still come back, and `close` sends whatever is still held.
   */
  readonly background?: boolean;
}

export interface StoreResult<T extends readonly StoreOp[] = readonly StoreOp[]> {
  /** Aligned with `batch.ops` by index. */
  readonly results: { -readonly [K in keyof T]: OpResult<T[K]> };
}

export interface Store {
  readonly kind: "memory" | "redis";
  /**
   * Runs every op of the batch in one round trip; results are aligned with `batch.ops`.
   * Rejects with InvalidStoreOpError on a malformed op, otherwise on failure or timeout.
   */
  exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>>;
  close(): Promise<void>;
}

/** The full key text of a store key: `{tag}` is the Redis Cluster hash tag. */
export function keyText(prefix: string, key: StoreKey): string {
  return `${prefix}{${key.tag}}:${key.name}`;
}

/** A batch no store could run (caller misuse, not a store failure: breakers ignore it). */
export class InvalidStoreOpError extends TypeError {
  override readonly name = "InvalidStoreOpError";
}

const positiveInt = (n: number) => Number.isSafeInteger(n) && n > 0;
const countInt = (n: number) => Number.isSafeInteger(n) && n >= 0;

function opProblem(op: StoreOp): string | undefined {
  const key = op.key as StoreKey | undefined;
  // an empty tag would make Redis hash the whole key, scattering one tag over many slots
  if (typeof key?.tag !== "string" || key.tag === "") return "key.tag must be a non-empty string";
  if (typeof key.name !== "string" || key.name === "") return "key.name must be a non-empty string";
  switch (op.op) {
    case "window":
      if (!positiveInt(op.windowMs)) return "windowMs must be a positive integer";
      if (op.limit === undefined) {
        return countInt(op.cost) ? undefined : "cost must be a non-negative integer";
      }
      if (!positiveInt(op.limit)) return "limit must be a positive integer";
      // a limited window counts one request at a time (its log holds one time per request)
      return op.cost === 0 || op.cost === 1 ? undefined : "cost of a limited window must be 0 or 1";
    case "count":
      if (!countInt(op.cost)) return "cost must be a non-negative integer";
      return positiveInt(op.ttlMs) ? undefined : "ttlMs must be a positive integer";
    case "distinct":
      if (typeof op.member !== "string") return "member must be a string";
      return positiveInt(op.windowMs) ? undefined : "windowMs must be a positive integer";
    case "swap":
      if (typeof op.value !== "string") return "value must be a string";
      return positiveInt(op.ttlMs) ? undefined : "ttlMs must be a positive integer";
    case "get":
      return undefined;
    case "has":
      return typeof op.member === "string" ? undefined : "member must be a string";
    case "member":
      if (typeof op.member !== "string") return "member must be a string";
      if (!positiveInt(op.max)) return "max must be a positive integer";
      return positiveInt(op.ttlMs) ? undefined : "ttlMs must be a positive integer";
    case "baseline":
      if (!positiveInt(op.bucketMs)) return "bucketMs must be a positive integer";
      if (!(op.alpha > 0 && op.alpha <= 1)) return "alpha must be in (0, 1]";
      if (!countInt(op.cost)) return "cost must be a non-negative integer";
      return positiveInt(op.ttlMs) ? undefined : "ttlMs must be a positive integer";
    default:
      return `unknown op "${String((op as { op: unknown }).op)}"`;
  }
}

/** Throws InvalidStoreOpError naming the first op no store could run. */
export function assertValidOps(ops: readonly StoreOp[]): void {
  for (let i = 0; i < ops.length; i++) {
    const problem = opProblem(ops[i] as StoreOp);
    if (problem !== undefined) throw new InvalidStoreOpError(`store op ${i}: ${problem}`);
  }
}
