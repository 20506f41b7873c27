import { afterPendingIo } from "../deadline.js";
import { RiskgateError } from "../errors.js";
import {
  InvalidStoreOpError,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
} from "./store.js";

export type BreakerState = "closed" | "open" | "half_open";

export interface GuardOptions {
  /**
   * Each call's own timeout. It counts from the call; when it falls due, a reply that has
   * already arrived is read first (see afterPendingIo), so a busy event loop alone does not
   * time calls out.
   */
  readonly timeoutMs: number;
  /**
   * Consecutive failures that open the breaker. Calls that were in flight together count once:
   * a failure counts only if its call started after the last counted failure came back.
   */
  readonly failureThreshold: number;
  /** How long the breaker stays open before one probe call may try. */
  readonly resetAfterMs: number;
  /** Breaker clock (ms); defaults to Date.now. */
  readonly clock?: () => number;
}

export interface GuardHooks {
  onStateChange?(state: BreakerState): void;
  /** Every call that reached the store: how long it took and whether it succeeded (metrics). */
  onCall?(ms: number, ok: boolean): void;
  /** The cause of every failed call that reached the store (logs). */
  onError?(err: unknown): void;
}

const unavailable = (message: string, details: Record<string, unknown>, cause?: unknown) =>
  new RiskgateError(
    "RISKGATE_STORE_UNAVAILABLE",
    message,
    details,
    cause === undefined ? undefined : { cause },
  );

/**
 * Wraps a store with a per-call timeout and a circuit breaker. Every failure rejects with
 * RISKGATE_STORE_UNAVAILABLE. After `failureThreshold` consecutive failures the breaker opens
 * and calls fail at once (the failure mode decides without waiting); after `resetAfterMs` one
 * probe goes through while the others keep failing fast, and the probe's outcome alone closes
 * or reopens it. Hooks run so that their bugs cannot break the call.
 */
export function createGuardedStore(
  inner: Store,
  options: GuardOptions,
  hooks: GuardHooks = {},
): Store & { readonly breakerState: BreakerState } {
  const clock = options.clock ?? Date.now;
  let state: BreakerState = "closed";
  let failures = 0;
  // Calls are numbered as they start; `counted` is the number of the latest call started when
  // the last counted failure came back. A failed call at or below it was in flight together with
  // that failure (one stall of the server or the store times out every call in flight at once)
  // and tells nothing new, so a burst of concurrent failures is one failure, not a full count.
  let calls = 0;
  let counted = 0;
  let openedAt = 0;
  let probing = false;

  const safely = (fn: () => void) => {
    try {
      fn();
    } catch {
      // an observer's bug must not break the store
    }
  };
  const setState = (next: BreakerState) => {
    if (next === state) return;
    state = next;
    if (next === "open") openedAt = clock();
    safely(() => hooks.onStateChange?.(next));
  };

  async function guarded<T extends readonly StoreOp[]>(
    batch: StoreBatch<T>,
    probe: boolean,
  ): Promise<StoreResult<T>> {
    const call = ++calls;
    const since = performance.now();
    let cancel: (() => void) | undefined;
    try {
      const result = await Promise.race([
        inner.exec(batch),
        new Promise<never>((_, reject) => {
          cancel = afterPendingIo(options.timeoutMs, () =>
            reject(
              unavailable(`store call timed out after ${options.timeoutMs} ms`, {
                timeoutMs: options.timeoutMs,
              }),
            ),
          );
        }),
      ]);
      failures = 0;
      // a late success of a call sent before the breaker opened does not close it: the probe does
      if (probe) setState("closed");
      safely(() => hooks.onCall?.(performance.now() - since, true));
      return result;
    } catch (err) {
      // misuse is the caller's bug, not the store's health: passed on, not counted
      if (err instanceof InvalidStoreOpError) throw err;
      safely(() => hooks.onCall?.(performance.now() - since, false));
      safely(() => hooks.onError?.(err));
      if (probe) setState("open");
      else if (state === "closed" && call > counted) {
        counted = calls;
        if (++failures >= options.failureThreshold) setState("open");
      }
      if (err instanceof RiskgateError) throw err;
      throw unavailable(`store call failed: ${(err as Error)?.message ?? String(err)}`, {}, err);
    } finally {
      cancel?.();
      if (probe) probing = false;
    }
  }

  return {
    kind: inner.kind,
    get breakerState() {
      return state;
    },
    exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      if (state === "closed") return guarded(batch, false);
      if (state === "open" && clock() - openedAt >= options.resetAfterMs) setState("half_open");
      if (state === "half_open" && !probing) {
        probing = true;
        return guarded(batch, true);
      }
      return Promise.reject(
        unavailable(
          state === "open"
            ? "store circuit breaker is open"
            : "store circuit breaker probe in flight",
          { breaker: state },
        ),
      );
    },
    close: () => inner.close(),
  };
}
