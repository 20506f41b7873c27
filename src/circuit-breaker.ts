export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failures: number;
  /** How long it stays open before one probe call may try (ms). */
  readonly openMs: number;
  /** Clock in ms (Date.now by default; tests move it by hand). */
  readonly now?: () => number;
  /** Told of every change of state; its errors are swallowed (an observer cannot break calls). */
  onStateChange?(state: BreakerState): void;
}

/**
 * The breaker of one remote dependency (the state store, the scoring webhook, a CAPTCHA
 * provider). Closed, it lets calls through and counts consecutive failures; at `failures` it
 * opens and refuses calls for `openMs`; then the next caller is the one probe (half-open) while
 * the others keep being refused, and the probe's outcome alone closes or reopens it.
 *
 * Calls are numbered as they start (`acquire`). Calls in flight together count once: one stall
 * of the dependency times out every call in flight at once, which is one failure, not a full
 * count. A late success of a call sent before the breaker opened does not close it: the probe
 * does.
 */
export interface CircuitBreaker {
  /** May a call go out now? Its number when it may, undefined when the breaker refuses. */
  acquire(): number | undefined;
  success(call: number): void;
  failure(call: number): void;
  readonly state: BreakerState;
}

export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const now = options.now ?? Date.now;
  let state: BreakerState = "closed";
  let failures = 0;
  let openedAt = 0;
  // the probe's call number while half-open (0: none in flight)
  let probe = 0;
  // `counted`: the latest call number when the last counted failure came back; a failed call at
  // or below it was in flight together with that failure and tells nothing new
  let calls = 0;
  let counted = 0;
  const set = (next: BreakerState) => {
    if (next === state) return;
    state = next;
    if (next === "open") openedAt = now();
    try {
      options.onStateChange?.(next);
    } catch {
      // an observer's bug must not break the calls
    }
  };
  return {
    get state() {
      return state;
    },
    acquire() {
      if (state === "closed") return ++calls;
      if (state === "open" && now() - openedAt >= options.openMs) set("half_open");
      if (state !== "half_open" || probe !== 0) return undefined;
      probe = ++calls;
      return probe;
    },
    success(call) {
      if (call === probe) {
        probe = 0;
        failures = 0;
        set("closed");
      } else if (state === "closed") {
        failures = 0;
      }
    },
    failure(call) {
      if (call === probe) {
        probe = 0;
        set("open");
        return;
      }
      if (state !== "closed" || call <= counted) return;
      counted = calls;
      if (++failures >= options.failures) set("open");
    },
  };
}
