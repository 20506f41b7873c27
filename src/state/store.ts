/**
 * The state store port. One call, one round trip: a Check gathers every counter it needs into
 * one {@link StoreBatch}, and the store answers all of them at once (memory: synchronously;
 * Redis: one EVALSHA). Implementations: `memory-store.ts` (embedded default) and
 * `redis-store.ts` (shared by replicas).
 */

/**
 * Sliding-window counter: adds `cost` to the key's current window and answers the weighted
 * count over the last `windowMs` (previous window weighted by its remaining overlap).
 */
export interface WindowOp {
  readonly op: "window";
  readonly key: string;
  readonly windowMs: number;
  /** Amount to add (0 reads without counting). */
  readonly cost: number;
}

export interface WindowReading {
  /** Estimated requests in the sliding window, including this one. */
  readonly count: number;
  /** Milliseconds until the current fixed window rolls over. */
  readonly resetMs: number;
}

export type StoreOp = WindowOp;

export interface StoreBatch {
  readonly ops: readonly StoreOp[];
  /** The decision's clock (ms since epoch); the memory store uses it, Redis uses server time. */
  readonly now: number;
}

/** Results aligned with `batch.ops` by index. */
export interface StoreResult {
  readonly readings: readonly WindowReading[];
}

export interface Store {
  readonly kind: "memory" | "redis";
  /** Runs every op of the batch in one round trip. Rejects on failure or timeout. */
  exec(batch: StoreBatch): Promise<StoreResult>;
  close(): Promise<void>;
}
