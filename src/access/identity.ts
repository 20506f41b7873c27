import { decodeProtectedHeader, errors, jwtVerify } from "jose";
import { LRUCache } from "lru-cache";
import type { PolicyDocument } from "../config/policy-schema.js";
import { RiskgateError } from "../errors.js";
import { cookieValue } from "./cookies.js";
import type { KeySource } from "./key-source.js";
import type { ReasonCode } from "./reasons.js";
import type { AccessRequest } from "./request.js";

export type IdentitySource = "bearer" | "cookie" | "jwt_authn";

/** The identify stage's result. `detail` never contains the token. */
export type IdentityOutcome =
  | { readonly kind: "anonymous" }
  | {
      readonly kind: "verified";
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

/** Tokens longer than this are refused unparsed. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** How long a token that failed for a reason that cannot change (signature, form) stays refused. */
const NEGATIVE_TTL_MS = 30_000;

interface CachedToken {
  readonly claims: Readonly<Record<string, unknown>>;
  /** exp in ms (without skew). */
  readonly expiresAt: number;
  /** nbf in ms, when set. */
  readonly notBefore?: number;
}

/**
 * The identify stage: finds the credential (bearer header, cookie, or Envoy's jwt_authn
 * payload), verifies it with jose against the policy (algorithms, issuer, audience, exp/nbf
 * with skew), and caches verified tokens until they expire so each is verified once.
 */
export function createIdentifier(
  deps: { keys: KeySource | undefined },
  options: PolicyDocument["identity"],
): Identifier {
  const skewMs = options.clock_skew_seconds * 1000;
  const algorithms = [...options.algorithms];
  const verified = new LRUCache<string, CachedToken>({ max: options.token_cache.max_entries });
  const refused = new LRUCache<string, { reason: ReasonCode; detail: string; until: number }>({
    max: 1024,
  });
  const inflight = new Map<string, Promise<IdentityOutcome>>();
  const stats: IdentityStats = { verifications: 0, cacheHits: 0, failures: 0 };
  const { header, cookie, jwt_authn: jwtAuthn } = options.sources;

  const invalid = (reason: ReasonCode, detail: string): IdentityOutcome => {
    stats.failures++;
    return { kind: "invalid", reason, detail };
  };

  async function verify(
    token: string,
    nowMs: number,
    source: IdentitySource,
  ): Promise<IdentityOutcome> {
    if (deps.keys === undefined) return invalid("identity.keys_unavailable", "no key source");
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return invalid("identity.malformed", "undecodable header");
    }
    if (alg === undefined || !(algorithms as string[]).includes(alg)) {
      return remember(
        token,
        nowMs,
        "identity.algorithm_not_allowed",
        `alg ${String(alg).slice(0, 16)}`,
      );
    }
    stats.verifications++;
    try {
      const { payload } = await jwtVerify(token, deps.keys.getKey, {
        algorithms,
        issuer: options.issuers,
        audience: options.audiences,
        clockTolerance: options.clock_skew_seconds,
        currentDate: new Date(nowMs),
        requiredClaims: ["exp"],
      });
      const entry: CachedToken = {
        claims: Object.freeze({ ...payload }),
        expiresAt: (payload.exp as number) * 1000,
        ...(typeof payload.nbf === "number" ? { notBefore: payload.nbf * 1000 } : {}),
      };
      verified.set(token, entry);
      return { kind: "verified", claims: entry.claims, source, cached: false };
    } catch (err) {
      const [reason, detail] = classify(err);
      if (reason === "identity.keys_unavailable") return invalid(reason, detail);
      // expiry, nbf, iss and aud depend on the clock or the policy: only form and signature
      // failures are remembered
      const lasting =
        reason === "identity.bad_signature" ||
        reason === "identity.malformed" ||
        reason === "identity.unknown_key";
      return lasting ? remember(token, nowMs, reason, detail) : invalid(reason, detail);
    }
  }

  function remember(
    token: string,
    nowMs: number,
    reason: ReasonCode,
    detail: string,
  ): IdentityOutcome {
    refused.set(token, { reason, detail, until: nowMs + NEGATIVE_TTL_MS });
    return invalid(reason, detail);
  }

  function fromToken(
    token: string,
    nowMs: number,
    source: IdentitySource,
  ): Promise<IdentityOutcome> {
    if (token.length > MAX_TOKEN_BYTES) {
      return Promise.resolve(invalid("identity.malformed", "token too large"));
    }
    const hit = verified.get(token);
    if (hit !== undefined) {
      if (nowMs > hit.expiresAt + skewMs) {
        verified.delete(token);
        return Promise.resolve(invalid("identity.expired", "token expired"));
      }
      if (hit.notBefore !== undefined && nowMs + skewMs < hit.notBefore) {
        return Promise.resolve(invalid("identity.not_yet_valid", "nbf in the future"));
      }
      stats.cacheHits++;
      return Promise.resolve({ kind: "verified", claims: hit.claims, source, cached: true });
    }
    const bad = refused.get(token);
    if (bad !== undefined && nowMs < bad.until) {
      return Promise.resolve(invalid(bad.reason, bad.detail));
    }
    // concurrent requests with the same new token share one verification
    let pending = inflight.get(token);
    if (pending === undefined) {
      pending = verify(token, nowMs, source).finally(() => inflight.delete(token));
      inflight.set(token, pending);
    }
    return pending;
  }

  function fromJwtAuthn(req: AccessRequest, nowMs: number): IdentityOutcome | undefined {
    const payload = req.metadata[jwtAuthn.namespace]?.[jwtAuthn.key];
    if (payload === undefined) return undefined;
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      return invalid("identity.claims_invalid", "jwt_authn payload is not an object");
    }
    const claims = payload as Record<string, unknown>;
    if (typeof claims.exp === "number" && nowMs > claims.exp * 1000 + skewMs) {
      return invalid("identity.expired", "jwt_authn payload expired");
    }
    return { kind: "verified", claims, source: "jwt_authn", cached: false };
  }

  return {
    identify(req, nowMs) {
      try {
        const auth = req.headers.get(header);
        if (auth !== undefined && auth !== "") {
          const m = /^\s*bearer\s+(\S+)\s*$/i.exec(auth);
          if (m === null)
            return Promise.resolve(
              invalid("identity.malformed", `${header} is not a Bearer credential`),
            );
          return fromToken(m[1] as string, nowMs, "bearer");
        }
        if (cookie !== undefined) {
          const value = cookieValue(req.headers.get("cookie"), cookie);
          if (value !== undefined && value !== "") return fromToken(value, nowMs, "cookie");
        }
        if (jwtAuthn.enabled) {
          const outcome = fromJwtAuthn(req, nowMs);
          if (outcome !== undefined) return Promise.resolve(outcome);
        }
        return Promise.resolve({ kind: "anonymous" });
      } catch (err) {
        return Promise.resolve(invalid("identity.malformed", (err as Error).message));
      }
    },
    ready: () => deps.keys?.ready() ?? Promise.resolve(),
    stats: () => ({ ...stats }),
  };
}

/** Maps jose's (and the key source's) errors to reason codes. */
function classify(err: unknown): [ReasonCode, string] {
  if (err instanceof errors.JWTExpired) return ["identity.expired", "token expired"];
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "nbf":
      case "iat":
        return ["identity.not_yet_valid", `${err.claim} in the future`];
      case "iss":
        return ["identity.issuer_mismatch", "unexpected iss"];
      case "aud":
        return ["identity.audience_mismatch", "unexpected aud"];
      default:
        return ["identity.claims_invalid", `claim ${err.claim}: ${err.reason}`];
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return ["identity.bad_signature", "signature does not verify"];
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return ["identity.algorithm_not_allowed", "algorithm not allowed"];
  }
  if (err instanceof errors.JWKSNoMatchingKey) return ["identity.unknown_key", "no key for kid"];
  if (
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    err instanceof RiskgateError ||
    (err instanceof Error && (err.name === "TypeError" || err.name === "AbortError"))
  ) {
    return ["identity.keys_unavailable", "keys unavailable"];
  }
  if (err instanceof errors.JWKInvalid || err instanceof errors.JWKSMultipleMatchingKeys) {
    return ["identity.keys_unavailable", "unusable key"];
  }
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) {
    return ["identity.malformed", "not a valid JWT"];
  }
  return ["identity.malformed", "unverifiable token"];
}
