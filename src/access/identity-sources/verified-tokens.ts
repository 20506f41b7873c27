import { LRUCache } from "lru-cache";
import { deepFreeze } from "../../deep-freeze.js";
import type { Caller } from "../license.js";
import type { ReasonCode } from "../reasons.js";
import { checkTimes, type TokenVerifier } from "../token-verifier.js";

/** How long a token that failed for a lasting reason stays refused without a new verification. */
const NEGATIVE_TTL_MS = 30_000;
const NEGATIVE_MAX_ENTRIES = 1024;
/**
 * Memory bound of the verified-token cache whatever the tokens' sizes, in characters: each
 * entry is counted as twice its token (the key plus the decoded claims).
 */
const CACHE_MAX_CHARS = 256 * 1024 * 1024;

/** A verified token's claims and the caller read from them (both frozen). */
export interface CachedToken {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly caller: Caller;
}

export type TokenCheck =
  | { readonly ok: true; readonly entry: CachedToken; readonly cached: boolean }
  | { readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

export interface VerifiedTokens {
  /** The token's caller, from the cache or from one verification shared by concurrent asks. */
  check(token: string, nowMs: number): TokenCheck | Promise<TokenCheck>;
  readonly counts: { verifications: number; cacheHits: number };
}

export interface VerifiedTokensOptions {
  readonly skewSeconds: number;
  readonly maxLifetimeSeconds: number;
  readonly maxEntries: number;
  /** The caller of verified claims; undefined when the claims name no subject. */
  readonly callerOf: (claims: Readonly<Record<string, unknown>>) => Caller | undefined;
}

type Refused = { reason: ReasonCode; detail: string; until: number };

const NO_SUBJECT = { reason: "identity.claims_invalid", detail: "no subject" } as const;

/**
 * Verifies each token once and keeps its claims and caller until the token expires. Three
 * caches: verified tokens, refused tokens (30 s), and verifications in flight.
 */
export function createVerifiedTokens(
  verifier: TokenVerifier,
  options: VerifiedTokensOptions,
  onVerification?: (ok: boolean) => void,
): VerifiedTokens {
  const verified = new LRUCache<string, CachedToken>({
    max: options.maxEntries,
    maxSize: CACHE_MAX_CHARS,
    sizeCalculation: (_entry, token) => token.length * 2,
  });
  const refused = new LRUCache<string, Refused>({ max: NEGATIVE_MAX_ENTRIES });
  const inflight = new Map<string, Promise<TokenCheck>>();
  const counts = { verifications: 0, cacheHits: 0 };

  async function verify(token: string, nowMs: number): Promise<TokenCheck> {
    const result = await verifier.verify(token, nowMs);
    if (result.attempted) {
      counts.verifications++;
      onVerification?.(result.ok);
    }
    const check = result.ok ? admit(verified, options, token, result.payload) : result;
    // only what cost a verification is remembered: a refusal read from the token's text is
    // cheaper to repeat than to cache, and would only push out the entries that matter
    if (!check.ok && check.lasting && result.attempted) {
      refused.set(token, {
        reason: check.reason,
        detail: check.detail,
        until: nowMs + NEGATIVE_TTL_MS,
      });
    }
    return check.ok ? { ok: true, entry: check.entry, cached: false } : check;
  }

  return {
    counts,
    check(token, nowMs) {
      const hit = verified.get(token);
      if (hit !== undefined) {
        const times = checkTimes(
          hit.claims,
          nowMs,
          options.skewSeconds,
          options.maxLifetimeSeconds,
        );
        if (times === undefined) {
          counts.cacheHits++;
          return { ok: true, entry: hit, cached: true };
        }
        if (times.lasting) verified.delete(token);
        return { ok: false, reason: times.reason, detail: times.detail };
      }
      const bad = refused.get(token);
      if (bad !== undefined) {
        if (nowMs < bad.until) return { ok: false, reason: bad.reason, detail: bad.detail };
        refused.delete(token);
      }
      // concurrent requests with the same new token share one verification
      let pending = inflight.get(token);
      if (pending === undefined) {
        pending = verify(token, nowMs).finally(() => inflight.delete(token));
        inflight.set(token, pending);
      }
      return pending;
    },
  };
}

/** Caches a verified token with its caller; claims that name no subject are refused. */
function admit(
  verified: LRUCache<string, CachedToken>,
  options: VerifiedTokensOptions,
  token: string,
  payload: Record<string, unknown>,
) {
  const claims = deepFreeze({ ...payload });
  const caller = options.callerOf(claims);
  if (caller === undefined) return { ok: false, ...NO_SUBJECT, lasting: true } as const;
  const entry: CachedToken = { claims, caller };
  verified.set(token, entry);
  return { ok: true, entry } as const;
}
