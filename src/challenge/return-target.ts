import { CHALLENGE_PATH } from "./page.js";

/**
 * A return target riskgate will redirect to: an origin-form path on the same host. Anything
 * else (an absolute or scheme-relative URL, a backslash, control characters, the challenge
 * page itself) becomes `/`, so a challenge can never be an open redirect.
 */
export function safeReturn(target: string): string {
  if (
    target.length > 2048 ||
    !target.startsWith("/") ||
    target.startsWith("//") ||
    hasControlOrBackslash(target) ||
    target.startsWith(CHALLENGE_PATH)
  ) {
    return "/";
  }
  return target;
}

function hasControlOrBackslash(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return true;
  }
  return false;
}
