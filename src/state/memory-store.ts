import { LRUCache } from "lru-cache";
import type { Store, StoreBatch, StoreResult, WindowReading } from "./store.js";

export interface MemoryStoreOptions {
  /** Most keys kept; the least recently used go first. */
  readonly maxKeys?: number;
}

interface WindowState {
  /** Start of the current fixed window (ms). */
  start: number;
  current: number;
  previous: number;
}

/**
 * The embedded store: single process, bounded (LRU with a key cap; entries also expire with the
 * clock the caller passes), same semantics as the Redis store.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const windows = new LRUCache<string, WindowState>({ max: options.maxKeys ?? 100_000 });

  function window(key: string, windowMs: number, cost: number, now: number): WindowReading {
    const start = now - (now % windowMs);
    let state = windows.get(key);
    if (state === undefined || state.start <= start - 2 * windowMs) {
      state = { start, current: 0, previous: 0 };
      windows.set(key, state);
    } else if (state.start < start) {
      state.previous = state.start === start - windowMs ? state.current : 0;
      state.current = 0;
      state.start = start;
    }
    state.current += cost;
    const overlap = (windowMs - (now - start)) / windowMs;
    return {
      count: state.current + Math.floor(state.previous * overlap),
      resetMs: start + windowMs - now,
    };
  }

  return {
    kind: "memory",
    exec(batch: StoreBatch): Promise<StoreResult> {
      const readings = batch.ops.map((op) => window(op.key, op.windowMs, op.cost, batch.now));
      return Promise.resolve({ readings });
    },
    close: () => {
      windows.clear();
      return Promise.resolve();
    },
  };
}
