import { createHash } from "node:crypto";
import type { InteractivePolicy } from "../config/policy-schema.js";

/**
 * Leading zero bits asked of a proof of work: `min_bits` at score 0 up to `max_bits` at score
 * 100, linear between. Each bit doubles the expected work, so a riskier caller pays more.
 */
export function powBits(score: number, cfg: InteractivePolicy["pow"]): number {
  const s = Math.max(0, Math.min(100, score));
  return cfg.min_bits + Math.round(((cfg.max_bits - cfg.min_bits) * s) / 100);
}

/** The number of leading zero bits of a byte string. */
export function leadingZeroBits(bytes: Uint8Array): number {
  let bits = 0;
  for (const b of bytes) {
    if (b === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

/** An answer is a decimal counter of at most 15 digits. */
const ANSWER = /^\d{1,15}$/;

/**
 * True when SHA-256(`nonce:answer`) starts with at least `bits` zero bits: the puzzle the page
 * solves with WebCrypto, checked here with one hash.
 */
export function verifyPow(nonce: string, answer: string, bits: number): boolean {
  if (!ANSWER.test(answer)) return false;
  const digest = createHash("sha256").update(`${nonce}:${answer}`).digest();
  return leadingZeroBits(digest) >= bits;
}
