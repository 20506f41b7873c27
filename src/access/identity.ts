import { LRUCache } from "lru-cache";
import { deepFreeze } from "../deep-freeze.js";
import { bearerCredential } from "./credentials/bearer.js";
import { cookieCredential } from "./credentials/cookie.js";
import {
  type Credential,
  type CredentialSource,
  MAX_TOKEN_BYTES,
  TOO_LARGE_DETAIL,
} from "./credentials/credential.js";
import { jwtAuthnCredential } from "./credentials/jwt-authn.js";
import type { KeySource } from "./key-source.js";
import { type Caller, callerFromClaims } from "./license.js";
import type { PolicyDocument } from "./policy.js";
import type { ReasonCode } from "./reasons.js";
import type { AccessRequest } from "./request.js";
import { withClientSubject } from "./subject-fallback.js";
import { checkTimes, createTokenVerifier } from "./token-verifier.js";

export type IdentitySource = CredentialSource;

/** The identify stage's result. `detail` never contains the token. */
export type IdentityOutcome =
  | { readonly kind: "anonymous" }
  | {
      readonly kind: "verified";
      /** The caller read from the claims through the policy's claim paths (frozen). */
      readonly caller: Caller;
      readonly claims: Readonly<Record<string, unknown>>;
      readonly source: IdentitySource;
      readonly cached: boolean;
    }
  | { readonly kind: "invalid"; readonly reason: ReasonCode; readonly detail: string };

export interface IdentityStats {
  /** Signature verifications performed (cache misses that reached jose). */
  verifications: number;
  cacheHits: number;
  failures: number;
}

export interface Identifier {
  /** Identifies the caller of one request. Never rejects. */
  identify(req: AccessRequest, nowMs: number): Promise<IdentityOutcome>;
  /** Resolves when the key source has keys (health turns SERVING after it). */
  ready(): Promise<void>;
  stats(): IdentityStats;
}

/** How long a token that failed for a lasting reason stays refused without a new verification. */
const NEGATIVE_TTL_MS = 30_000;
const NEGATIVE_MAX_ENTRIES = 1024;
/**
 * Memory bound of the verified-token cache whatever the tokens' sizes, in characters: each
 * entry is counted as twice its token (the key plus the decoded claims).
 */
const CACHE_MAX_CHARS = 256 * 1024 * 1024;

interface CachedToken {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly caller: Caller;
}

type Check =
  | { readonly ok: true; readonly entry: CachedToken }
  | { readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

/**
 * The identify stage: asks the credential sources in turn (bearer header, cookie, Envoy's
 * jwt_authn payload), verifies a token once (token-verifier.ts) and keeps the verified claims
 * and the caller read from them until the token expires, so each token is verified once.
 * Three caches: verified tokens, refused tokens (30 s), and verifications in flight.
 */
export function createIdentifier(
  deps: {
    keys: KeySource | undefined;
    /** Called after each signature verification (cache misses only): verified or refused. */
    onVerification?: (ok: boolean) => void;
  },
  options: PolicyDocument["identity"],
): Identifier {
  const skew = options.clock_skew_seconds;
  const maxLifetime = options.max_token_lifetime_seconds;
  const verifier = createTokenVerifier(deps.keys, options);
  const verified = new LRUCache<string, CachedToken>({
    max: options.token_cache.max_entries,
    maxSize: CACHE_MAX_CHARS,
    sizeCalculation: (_entry, token) => token.length * 2,
  });
  const refused = new LRUCache<string, { reason: ReasonCode; detail: string; until: number }>({
    max: NEGATIVE_MAX_ENTRIES,
  });
  const inflight = new Map<string, Promise<Check>>();
  const stats: IdentityStats = { verifications: 0, cacheHits: 0, failures: 0 };
  const { header, cookie, jwt_authn: jwtAuthn } = options.sources;

  const invalid = (reason: ReasonCode, detail: string): IdentityOutcome => {
    stats.failures++;
    return { kind: "invalid", reason, detail };
  };

  /** The caller of verified claims, or why the claims cannot name one. */
  const callerOf = (claims: Readonly<Record<string, unknown>>): Caller | undefined => {
    const caller = withClientSubject(
      callerFromClaims(claims, options.claims),
      claims,
      options.claims.subject_fallback,
    );
    return caller.subject === "" ? undefined : deepFreeze(caller);
  };
  const NO_SUBJECT = { reason: "identity.claims_invalid", detail: "no subject" } as const;

  /** Caches a verified token with its caller; claims that name no subject are refused. */
  function admit(token: string, payload: Record<string, unknown>) {
    const claims = deepFreeze({ ...payload });
    const caller = callerOf(claims);
    if (caller === undefined) return { ok: false, ...NO_SUBJECT, lasting: true } as const;
    const entry: CachedToken = { claims, caller };
    verified.set(token, entry);
    return { ok: true, entry } as const;
  }

  async function verify(token: string, nowMs: number): Promise<Check> {
    const result = await verifier.verify(token, nowMs);
    if (result.attempted) {
      stats.verifications++;
      deps.onVerification?.(result.ok);
    }
    const check = result.ok ? admit(token, result.payload) : result;
    // only what cost a verification is remembered: a refusal read from the token's text is
    // cheaper to repeat than to cache, and would only push out the entries that matter
    if (!check.ok && check.lasting && result.attempted) {
      const until = nowMs + NEGATIVE_TTL_MS;
      refused.set(token, { reason: check.reason, detail: check.detail, until });
    }
    return check;
  }

  function fromToken(
    token: string,
    nowMs: number,
    source: IdentitySource,
  ): Promise<IdentityOutcome> {
    if (token.length > MAX_TOKEN_BYTES) {
      return Promise.resolve(invalid("identity.malformed", TOO_LARGE_DETAIL));
    }
    const hit = verified.get(token);
    if (hit !== undefined) {
      const times = checkTimes(hit.claims, nowMs, skew, maxLifetime);
      if (times !== undefined) {
        if (times.lasting) verified.delete(token);
        return Promise.resolve(invalid(times.reason, times.detail));
      }
      stats.cacheHits++;
      return Promise.resolve({
        kind: "verified",
        caller: hit.caller,
        claims: hit.claims,
        source,
        cached: true,
      });
    }
    const bad = refused.get(token);
    if (bad !== undefined) {
      if (nowMs < bad.until) return Promise.resolve(invalid(bad.reason, bad.detail));
      refused.delete(token);
    }
    // concurrent requests with the same new token share one verification
    let pending = inflight.get(token);
    if (pending === undefined) {
      const started: Promise<Check> = verify(token, nowMs).finally(() => {
        inflight.delete(token);
      });
      inflight.set(token, started);
      pending = started;
    }
    return pending.then(
      (check): IdentityOutcome =>
        check.ok
          ? {
              kind: "verified",
              caller: check.entry.caller,
              claims: check.entry.claims,
              source,
              cached: false,
            }
          : invalid(check.reason, check.detail),
    );
  }

  /** Envoy verified signature, issuer and audience; the times are re-checked on our clock. */
  function fromClaims(claims: Readonly<Record<string, unknown>>, nowMs: number): IdentityOutcome {
    // a payload without exp is Envoy's to allow (jwt_authn accepts it); with exp, the same rules
    if (typeof claims.exp === "number") {
      const times = checkTimes(claims, nowMs, skew, maxLifetime);
      if (times !== undefined) return invalid(times.reason, `jwt_authn payload: ${times.detail}`);
    }
    const caller = callerOf(claims);
    if (caller === undefined) return invalid(NO_SUBJECT.reason, NO_SUBJECT.detail);
    return { kind: "verified", caller, claims, source: "jwt_authn", cached: false };
  }

  const credentialOf = (req: AccessRequest): Credential | undefined =>
    bearerCredential(req, header) ??
    cookieCredential(req, cookie) ??
    jwtAuthnCredential(req, jwtAuthn);

  return {
    identify(req, nowMs) {
      try {
        const found = credentialOf(req);
        if (found === undefined) return Promise.resolve({ kind: "anonymous" });
        switch (found.kind) {
          case "token":
            return fromToken(found.token, nowMs, found.source);
          case "claims":
            return Promise.resolve(fromClaims(found.claims as Record<string, unknown>, nowMs));
          case "unusable":
            return Promise.resolve(invalid(found.reason, found.detail));
        }
      } catch {
        // unreachable by design; the stage still never throws
        return Promise.resolve(invalid("identity.malformed", "unreadable credential"));
      }
    },
    ready: () => deps.keys?.ready() ?? Promise.resolve(),
    stats: () => ({ ...stats }),
  };
}
