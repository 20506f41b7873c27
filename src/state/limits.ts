/**
 * Bounds both stores enforce the same way: memory-store.ts reads them, and the Redis script
 * (redis-script.ts) is generated with them, so the two cannot drift apart.
 */

/** Most members a distinct count tracks per key (the count saturates there). */
export const MAX_DISTINCT = 10_000;

/** Longest run of empty buckets folded into a baseline at once (a long silence decays it fully). */
export const MAX_EMPTY_BUCKETS = 1000;
