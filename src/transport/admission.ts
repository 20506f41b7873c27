/**
 * The bound on Checks in flight, shared by the gRPC and HTTP listeners (they share one event
 * loop). Above it a request is answered at once instead of joining a queue that would carry
 * every caller past the time budget.
 */
export interface Admission {
  /** Takes a place; false when `limit` requests are already in flight (0: no limit). */
  tryEnter(): boolean;
  /** Gives the place back, once per `tryEnter` that returned true. */
  leave(): void;
  /** Requests in flight now. */
  inFlight(): number;
  readonly limit: number;
}

/** An admission bound of `limit` requests in flight; 0 admits every request. */
export function createAdmission(limit: number): Admission {
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`admission limit must be an integer >= 0, got ${limit}`);
  }
  let inFlight = 0;
  return {
    limit,
    tryEnter() {
      if (limit > 0 && inFlight >= limit) return false;
      inFlight++;
      return true;
    },
    leave() {
      if (inFlight > 0) inFlight--;
    },
    inFlight: () => inFlight,
  };
}
