import { verifyPow } from "../../src/challenge/pow.js";

/** Solves a proof-of-work puzzle as the page does: the first counter with `bits` zero bits. */
export function solvePow(nonce: string, bits: number, limit = 1 << 26): string | undefined {
  for (let i = 0; i < limit; i++) if (verifyPow(nonce, String(i), bits)) return String(i);
  return undefined;
}
