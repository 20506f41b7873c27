import { createHmac } from "node:crypto";
import { LRUCache } from "lru-cache";

/** Turns a subject or org id into the pseudonym telemetry shows instead. */
export type SubjectHasher = (value: string) => string;

/**
 * Pseudonymises ids for spans and audit lines: HMAC-SHA256 keyed with `key`, first 16 hex
 * characters (64 bits: collision-free for millions of ids, still joinable across lines). A keyed
 * hash, not a salted plain one, so nobody without the key can test guessed ids (emails) against
 * it. The same few subjects make most requests, so results are memoised in a bounded LRU.
 */
export function createSubjectHasher(key: string, cacheSize = 10_000): SubjectHasher {
  const cache = new LRUCache<string, string>({ max: cacheSize });
  return (value) => {
    let hashed = cache.get(value);
    if (hashed === undefined) {
      hashed = createHmac("sha256", key).update(value).digest("hex").slice(0, 16);
      cache.set(value, hashed);
    }
    return hashed;
  };
}
