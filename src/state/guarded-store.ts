import { type BreakerState, createCircuitBreaker } from "../circuit-breaker.js";
import { afterPendingIo } from "../deadline.js";
import { RiskgateError } from "../errors.js";
import {
  InvalidStoreOpError,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
} from "./store.js";

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
  const safely = (fn: () => void) => {
    try {
      fn();
    } catch {
      // an observer's bug must not break the store
    }
  };
  const breaker = createCircuitBreaker({
    failures: options.failureThreshold,
    openMs: options.resetAfterMs,
    ...(options.clock === undefined ? {} : { now: options.clock }),
    onStateChange: (next) => hooks.onStateChange?.(next),
  });

  async function guarded<T extends readonly StoreOp[]>(
    batch: StoreBatch<T>,
    call: number,
  ): Promise<StoreResult<T>> {
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
      breaker.success(call);
      safely(() => hooks.onCall?.(performance.now() - since, true));
      return result;
    } catch (err) {
      // misuse is the caller's bug, not the store's health: passed on, not counted
      if (err instanceof InvalidStoreOpError) {
        breaker.success(call);
        throw err;
      }
      safely(() => hooks.onCall?.(performance.now() - since, false));
      safely(() => hooks.onError?.(err));
      breaker.failure(call);
      if (err instanceof RiskgateError) throw err;
      throw unavailable(`store call failed: ${(err as Error)?.message ?? String(err)}`, {}, err);
    } finally {
      cancel?.();
    }
  }

  return {
    kind: inner.kind,
    get breakerState() {
      return breaker.state;
    },
    exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      const call = breaker.acquire();
      if (call !== undefined) return guarded(batch, call);
      return Promise.reject(
        unavailable(
          breaker.state === "open"
            ? "store circuit breaker is open"
            : "store circuit breaker probe in flight",
          { breaker: breaker.state },
        ),
      );
    },
    close: () => inner.close(),
  };
}
