export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failures: number;
  /** How long it stays open before one probe call may try (ms). */
  readonly openMs: number;
  /** Wall clock in ms (performance.now by default; tests move it by hand). */
  readonly now?: () => number;
  onStateChange?(state: BreakerState): void;
}

/**
 * A breaker for one remote dependency: closed, it lets calls through and counts consecutive
 * failures; at `failures` it opens and refuses calls for `openMs`; then it half-opens and lets
 * exactly one probe through, whose result closes or reopens it.
 */
export interface CircuitBreaker {
  /** May a call go out now? In half-open state only the first asker gets true. */
  tryAcquire(): boolean;
  success(): void;
  failure(): void;
  readonly state: BreakerState;
}

export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const now = options.now ?? (() => performance.now());
  let state: BreakerState = "closed";
  let failures = 0;
  let openUntil = 0;
  let probing = false;
  const set = (next: BreakerState) => {
    if (next === state) return;
    state = next;
    options.onStateChange?.(next);
  };
  return {
    get state() {
      if (state === "open" && now() >= openUntil) return "half_open";
      return state;
    },
    tryAcquire() {
      if (state === "closed") return true;
      if (state === "open") {
        if (now() < openUntil) return false;
        set("half_open");
        probing = false;
      }
      if (probing) return false;
      probing = true;
      return true;
    },
    success() {
      failures = 0;
      probing = false;
      set("closed");
    },
    failure() {
      probing = false;
      failures++;
      if (state === "half_open" || failures >= options.failures) {
        openUntil = now() + options.openMs;
        set("open");
      }
    },
  };
}
