/**
 * Calls `fn` once `ms` have passed and the I/O that had arrived by then has been read.
 *
 * Node runs due timers before it polls for I/O. After a busy stretch of the event loop (a burst
 * of Checks, a GC pause), a plain timer guarding a call fires although the reply is already
 * waiting in the socket: the call "times out" on the server's own backlog, and under load a
 * store timeout then opens the circuit breaker for every Check. Deferring to the check phase
 * (setImmediate, after the poll phase of the same loop turn) lets a reply that had arrived win,
 * so a deadline measures the dependency rather than the event loop; a reply that has not
 * arrived still loses, a few microseconds later than a plain timer would say so.
 *
 * Returns a function that cancels it.
 */
export function afterPendingIo(ms: number, fn: () => void): () => void {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(fn);
  }, ms);
  return () => {
    clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
  };
}
