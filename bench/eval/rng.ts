/**
 * A small seeded random source (mulberry32) so the same seed always writes the same traffic.
 * Math.random is never used by the generator.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
  /** Exponential with the given mean. */
  exp(mean: number): number;
  /** Log-normal with the given median and log-space sigma. */
  logNormal(median: number, sigma: number): number;
  /** Normal with mean and standard deviation. */
  normal(mean: number, sd: number): number;
  /** An independent stream derived from this one's seed and a label (stable across code changes elsewhere). */
  fork(label: string): Rng;
  /** 32 random bits as hex, for ids. */
  hex(chars: number): string;
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** A seeded generator; `fork` gives each actor its own stream, so adding one actor leaves the others' traffic unchanged. */
export function createRng(seed: number | string): Rng {
  const base = typeof seed === "number" ? seed >>> 0 : hashString(seed);
  let s = base;
  const next = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new TypeError("pick from an empty list");
      return items[Math.floor(next() * items.length)] as T;
    },
    chance: (p) => next() < p,
    exp: (mean) => -mean * Math.log(1 - next()),
    normal: (mean, sd) => {
      const u = 1 - next();
      const v = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    logNormal: (median, sigma) => median * Math.exp(rng.normal(0, sigma)),
    fork: (label) => createRng(hashString(`${base}:${label}`)),
    hex: (chars) => {
      let out = "";
      while (out.length < chars)
        out += Math.floor(next() * 4294967296)
          .toString(16)
          .padStart(8, "0");
      return out.slice(0, chars);
    },
  };
  return rng;
}
