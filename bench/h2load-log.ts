import { readFileSync } from "node:fs";

/**
 * Latency quantiles (ms) from an h2load `--log-file` (tab-separated, the third column the
 * request's duration in microseconds): `q(0.99)` is the p99, `q(1)` the maximum.
 */
export function h2loadQuantiles(log: string): (p: number) => number {
  const micros = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((l) => Number(l.split("\t")[2]))
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  return (p) => (micros[Math.min(micros.length - 1, Math.floor(p * micros.length))] ?? 0) / 1000;
}
