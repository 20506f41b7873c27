import { RiskgateError } from "../errors.js";
import type { Store, StoreBatch, StoreOp, StoreResult } from "./store.js";

export type BreakerState = "closed" | "open" | "half_open";

export interface GuardOptions {
  /** Each call's own timeout. */
  readonly timeoutMs: number;
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold: number;
  /** How long the breaker stays open before one probe call may try. */
  readonly resetAfterMs: number;
  readonly clock?: () => number;
}

export interface GuardHooks {
  onStateChange?(state: BreakerState): void;
  onCall?(ms: number, ok: boolean): void;
}

/**
 * Wraps a store with a per-call timeout and a circuit breaker. While the breaker is open,
 * calls fail at once with RISKGATE_STORE_UNAVAILABLE (the failure mode decides without
 * waiting); after `resetAfterMs` one probe goes through and its outcome closes or reopens it.
 */
export function createGuardedStore(
  inner: Store,
  options: GuardOptions,
  hooks: GuardHooks = {},
): Store & { readonly breakerState: BreakerState } {
  const clock = options.clock ?? Date.now;
  let state: BreakerState = "closed";
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const setState = (next: BreakerState) => {
    if (next === state) return;
    state = next;
    try {
      hooks.onStateChange?.(next);
    } catch {
      // an observer's bug must not break the store
    }
  };
  const report = (started: number, ok: boolean) => {
    try {
      hooks.onCall?.(performance.now() - started, ok);
    } catch {
      // as above
    }
  };

  return {
    kind: inner.kind,
    get breakerState() {
      return state;
    },
    async exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      if (state === "open") {
        if (clock() - openedAt < options.resetAfterMs || probing) {
          throw new RiskgateError("RISKGATE_STORE_UNAVAILABLE", "store circuit breaker is open");
        }
        setState("half_open");
      }
      if (state === "half_open") {
        if (probing) throw new RiskgateError("RISKGATE_STORE_UNAVAILABLE", "store probe in flight");
        probing = true;
      }
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          inner.exec(batch),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new RiskgateError(
                    "RISKGATE_STORE_UNAVAILABLE",
                    `store call timed out after ${options.timeoutMs} ms`,
                  ),
                ),
              options.timeoutMs,
            );
          }),
        ]);
        failures = 0;
        setState("closed");
        report(started, true);
        return result;
      } catch (err) {
        failures++;
        report(started, false);
        if (state === "half_open" || failures >= options.failureThreshold) {
          openedAt = clock();
          setState("open");
        }
        if (err instanceof RiskgateError) throw err;
        throw new RiskgateError(
          "RISKGATE_STORE_UNAVAILABLE",
          `store call failed: ${(err as Error).message}`,
          {},
          { cause: err },
        );
      } finally {
        clearTimeout(timer);
        probing = false;
      }
    },
    close: () => inner.close(),
  };
}
