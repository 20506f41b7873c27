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
 * exactly one probe through, whose result closes or reopens it. As the store's breaker
 * (guarded-store.ts), calls that were in flight together count once: one stall times out every
 * call in flight at once, and that is one failure, not a full count.
 */
export interface CircuitBreaker {
  /**
   * May a call go out now? Its number when it may (pass it to `failure`), undefined when the
   * breaker refuses. In half-open state only the first asker gets a number.
   */
  acquire(): number | undefined;
  success(): void;
  failure(call: number): void;
  readonly state: BreakerState;
}

export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const now = options.now ?? (() => performance.now());
  let state: BreakerState = "closed";
  let failures = 0;
  let openUntil = 0;
  let probing = false;
  // calls are numbered as they start; a failure counts only if its call started after the
  // last counted failure came back (`counted`: the latest call number at that moment)
  let calls = 0;
  let counted = 0;
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
    acquire() {
      if (state === "closed") return ++calls;
      if (state === "open") {
        if (now() < openUntil) return undefined;
        set("half_open");
        probing = false;
      }
      if (probing) return undefined;
      probing = true;
      return ++calls;
    },
    success() {
      failures = 0;
      probing = false;
      set("closed");
    },
    failure(call) {
      probing = false;
      if (state === "closed") {
        if (call <= counted) return; // in flight with a failure already counted
        counted = calls;
      }
      failures++;
      if (state === "half_open" || failures >= options.failures) {
        openUntil = now() + options.openMs;
        set("open");
      }
    },
  };
}
