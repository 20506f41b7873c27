/**
 * The state store port. One call, one round trip: a Check gathers every counter it needs into
 * one batch, and the store answers all of them at once (memory: synchronously; Redis: one
 * EVALSHA per hash-tag group). Implementations: `memory-store.ts` (embedded default) and
 * `redis-store.ts` (shared by replicas).
 */

/** A key: `tag` groups keys that must live in one Redis Cluster slot (e.g. "s:alice"). */
export interface StoreKey {
  readonly tag: string;
  readonly name: string;
}

/** Sliding-window counter: adds `cost` and answers the weighted count over the last window. */
export interface WindowOp {
  readonly op: "window";
  readonly key: StoreKey;
  readonly windowMs: number;
  /** Amount to add (0 reads without counting). */
  readonly cost: number;
}

/** Plain counter with a TTL (quotas per calendar period: the period is in the key name). */
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
 */
export interface BaselineOp {
  readonly op: "baseline";
  readonly key: StoreKey;
  readonly bucketMs: number;
  readonly alpha: number;
  readonly ttlMs: number;
}

export interface WindowReading {
  /** Estimated requests in the sliding window, including this one. */
  readonly count: number;
  /** Milliseconds until the current fixed window rolls over. */
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
  /** Requests in the open bucket, this one included. */
  readonly current: number;
  readonly mean: number;
  readonly variance: number;
  /** Closed buckets folded into the baseline. */
  readonly samples: number;
}

export type StoreOp = WindowOp | CountOp | DistinctOp | SwapOp | MemberOp | BaselineOp;

/** The result type of one op. */
export type OpResult<O extends StoreOp> = O extends WindowOp
  ? WindowReading
  : O extends CountOp | DistinctOp
    ? CountReading
    : O extends SwapOp
      ? SwapReading
      : O extends MemberOp
        ? MemberReading
        : O extends BaselineOp
          ? BaselineReading
          : never;

export interface StoreBatch<T extends readonly StoreOp[] = readonly StoreOp[]> {
  readonly ops: T;
  /** The decision's clock (ms since epoch). */
  readonly now: number;
}

export interface StoreResult<T extends readonly StoreOp[] = readonly StoreOp[]> {
  /** Aligned with `batch.ops` by index. */
  readonly results: { -readonly [K in keyof T]: OpResult<T[K]> };
}

export interface Store {
  readonly kind: "memory" | "redis";
  /** Runs every op of the batch in one round trip. Rejects on failure or timeout. */
  exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>>;
  close(): Promise<void>;
}

/** The full key text of a store key: `{tag}` is the Redis Cluster hash tag. */
export function keyText(prefix: string, key: StoreKey): string {
  return `${prefix}{${key.tag}}:${key.name}`;
}
