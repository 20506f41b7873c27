import type { Ipv6Words } from "./ip-address.js";

/**
 * The row of the address range that holds `key`, found by bisection in O(log n); -1 when the key
 * lies before the first range, after the last, or in a gap between two. The ranges are disjoint,
 * sorted by start, with inclusive bounds, kept as two typed arrays of their first and last
 * addresses: one word a row for IPv4 (`key` a number), four words a row for IPv6 (`key` its
 * words).
 *
 * This runs on every IP list and ASN lookup, so each family has its own loop: one loop that asks
 * the key's family at every step, or takes a comparison callback, measured 3 to 70% slower on
 * `bench/ip-list.bench.ts` lookups.
 */
export function findRange(starts: Uint32Array, ends: Uint32Array, key: number | Ipv6Words): number {
  return typeof key === "number" ? findRange4(starts, ends, key) : findRange6(starts, ends, key);
}

function findRange4(starts: Uint32Array, ends: Uint32Array, key: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let last = -1; // the last range starting at or below the key
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((starts[mid] as number) <= key) {
      last = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return last >= 0 && key <= (ends[last] as number) ? last : -1;
}

function findRange6(starts: Uint32Array, ends: Uint32Array, key: Ipv6Words): number {
  let lo = 0;
  let hi = starts.length / 4 - 1;
  let last = -1; // the last range starting at or below the key
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (compareRow(starts, mid, key) <= 0) {
      last = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return last >= 0 && compareRow(ends, last, key) >= 0 ? last : -1;
}

/** Compares row `row` of a four-words-a-row table with `key` (negative, 0, positive). */
function compareRow(table: Uint32Array, row: number, key: Ipv6Words): number {
  const at = row * 4;
  for (let i = 0; i < 4; i++) {
    const d = (table[at + i] as number) - (key[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}
