import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findRange } from "../../src/geo/find-range.js";

/** Looks an IPv4-like `key` up among inclusive `[start, end]` ranges, one word a row. */
function lookup(ranges: readonly (readonly [number, number])[], key: number): number {
  return findRange(
    Uint32Array.from(ranges, (r) => r[0]),
    Uint32Array.from(ranges, (r) => r[1]),
    key,
  );
}

/** The same ranges as IPv6-like rows of four words, the value in the last word under a fixed prefix. */
function lookup6(ranges: readonly (readonly [number, number])[], key: number, high = 0x20010db8) {
  const rows = (pick: 0 | 1) =>
    Uint32Array.from(ranges.flatMap((r) => [0x20010db8, 0, 0, r[pick]]));
  return findRange(rows(0), rows(1), [high, 0, 0, key]);
}

// Disjoint and sorted, with a gap (30..39) and two adjacent ranges (40..49, 50..59).
const RANGES = [
  [10, 19],
  [20, 29],
  [40, 49],
  [50, 59],
  [70, 70],
] as const;

describe("findRange", () => {
  it("finds nothing among no ranges", () => {
    expect(lookup([], 0)).toBe(-1);
    expect(lookup6([], 0)).toBe(-1);
  });

  it("finds nothing below the first range or above the last", () => {
    expect(lookup(RANGES, 0)).toBe(-1);
    expect(lookup(RANGES, 9)).toBe(-1);
    expect(lookup(RANGES, 71)).toBe(-1);
    expect(lookup(RANGES, 0xffffffff)).toBe(-1);
  });

  it("compares all four words of an IPv6 row, the first that differs deciding", () => {
    expect(lookup6(RANGES, 15)).toBe(0);
    expect(lookup6(RANGES, 70)).toBe(4);
    // the last word would fall inside a range, but the first word puts the key below or above all
    expect(lookup6(RANGES, 15, 0x20010db7)).toBe(-1);
    expect(lookup6(RANGES, 15, 0x20010db9)).toBe(-1);
    expect(lookup6(RANGES, 71)).toBe(-1);
  });

  it("handles the address space's ends (0 and the top uint32)", () => {
    const whole: [number, number][] = [
      [0, 0],
      [1, 0xfffffffe],
      [0xffffffff, 0xffffffff],
    ];
    expect(lookup(whole, 0)).toBe(0);
    expect(lookup(whole, 1)).toBe(1);
    expect(lookup(whole, 0xfffffffe)).toBe(1);
    expect(lookup(whole, 0xffffffff)).toBe(2);
  });

  it("holds both bounds of every range (inclusive)", () => {
    RANGES.forEach(([start, end], i) => {
      expect(lookup(RANGES, start), `start of ${i}`).toBe(i);
      expect(lookup(RANGES, end), `end of ${i}`).toBe(i);
    });
  });

  it("tells adjacent ranges apart at the seam", () => {
    expect(lookup(RANGES, 19)).toBe(0);
    expect(lookup(RANGES, 20)).toBe(1);
    expect(lookup(RANGES, 49)).toBe(2);
    expect(lookup(RANGES, 50)).toBe(3);
  });

  it("finds nothing in a gap between two ranges", () => {
    expect(lookup(RANGES, 30)).toBe(-1);
    expect(lookup(RANGES, 39)).toBe(-1);
    expect(lookup(RANGES, 60)).toBe(-1);
    expect(lookup(RANGES, 69)).toBe(-1);
  });

  it("works with a single range of one value", () => {
    expect(lookup([[5, 5]], 4)).toBe(-1);
    expect(lookup([[5, 5]], 5)).toBe(0);
    expect(lookup([[5, 5]], 6)).toBe(-1);
  });

  it("agrees with a linear scan on random disjoint ranges", () => {
    // Ranges drawn as (gap before, length) pairs, so they are sorted and disjoint by
    // construction; gaps of 0 make adjacent ranges.
    const rangesArb = fc
      .array(fc.tuple(fc.nat({ max: 5 }), fc.nat({ max: 5 })), { maxLength: 40 })
      .map((parts) => {
        const out: [number, number][] = [];
        let next = 0;
        for (const [gap, length] of parts) {
          const start = next + gap;
          out.push([start, start + length]);
          next = start + length + 1;
        }
        return out;
      });
    fc.assert(
      fc.property(rangesArb, fc.nat({ max: 500 }), (ranges, key) => {
        const linear = ranges.findIndex(([start, end]) => start <= key && key <= end);
        expect(lookup(ranges, key)).toBe(linear);
        expect(lookup6(ranges, key)).toBe(linear);
      }),
      { seed: 0x5eed, numRuns: 500 },
    );
  });
});
