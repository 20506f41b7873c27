import { LRUCache } from "lru-cache";
import { applyOp, type Entry, type Tally } from "./memory-ops.js";
import {
  assertValidOps,
  type OpResult,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
} from "./store.js";

export { foldBucket } from "./memory-ops.js";

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
  // set members and logged request times held by all entries
  const tally: Tally = { members: 0 };
  const dispose = (e: Entry) => {
    if (e.kind === "distinct" || e.kind === "member") tally.members -= e.members.size;
    else if (e.kind === "log") tally.members -= e.times.length - e.head;
  };
  const callerEntries = new LRUCache<string, Entry>({ max: options.maxKeys ?? 200_000, dispose });
  const addressEntries = new LRUCache<string, Entry>({
    max: options.maxAddressKeys ?? 100_000,
    dispose,
  });

  function run(op: StoreOp, now: number): OpResult<StoreOp> {
    // no prefix: one process owns this map
    const key = `{${op.key.tag}}:${op.key.name}`;
    const entries = isAddress(op.key.tag) ? addressEntries : callerEntries;
    return applyOp(tally, entries, key, op, now);
  }

  return {
    kind: "memory",
    exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      try {
        assertValidOps(batch.ops);
        const results = batch.ops.map((op) => run(op, batch.now));
        // past the member cap the least recently used keys go, per-address ones first (never
        // the last one touched)
        while (tally.members > maxMembers && addressEntries.size > 1) addressEntries.pop();
        while (tally.members > maxMembers && callerEntries.size > 1) callerEntries.pop();
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
