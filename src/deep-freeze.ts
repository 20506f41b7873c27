/**
 * Freezes a plain JSON-like value and everything it holds, in place, and returns it. Used for
 * values shared by every request (validated policy documents, cached token claims), so no
 * request can change what the next one sees.
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
