import {
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import { LRUCache } from "lru-cache";
import type { PolicyDocument } from "../config/policy-schema.js";
import { cookieValue } from "./cookies.js";
import { isKeySelectionError, type KeySource } from "./key-source.js";
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

/** Tokens longer than this (in characters; a JWT is ASCII) are refused unparsed. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** How long a token that failed for a lasting reason stays refused without a new verification. */
const NEGATIVE_TTL_MS = 30_000;
const NEGATIVE_MAX_ENTRIES = 1024;
/**
 * Memory bound of the verified-token cache whatever the tokens' sizes, in characters: each
 * entry is counted as twice its token (the key plus the decoded claims).
 */
const CACHE_MAX_CHARS = 256 * 1024 * 1024;
const BEARER = /^\s*bearer\s+(\S+)\s*$/i;

/**
 * Failures that the same token meets again on every try against the same policy, so a flood of
 * one bad token costs one verification. Not here: not_yet_valid (time fixes it), unknown_key
 * (a key rotation fixes it) and keys_unavailable (the issuer's recovery fixes it).
 */
const LASTING: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  "identity.malformed",
  "identity.bad_signature",
  "identity.algorithm_not_allowed",
  "identity.expired",
  "identity.issuer_mismatch",
  "identity.audience_mismatch",
  "identity.claims_invalid",
]);

interface CachedToken {
  readonly claims: Readonly<Record<string, unknown>>;
  /** exp, in seconds like the claim. */
  readonly exp: number;
  /** nbf in seconds, when set. */
  readonly nbf: number | undefined;
}

type Check =
  | { readonly ok: true; readonly entry: CachedToken }
  | { readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

/** The key source failed (unreachable, timed out, unusable keys): never the token's fault. */
class KeysUnavailable extends Error {
  override readonly name = "KeysUnavailable";
}

/**
 * The identify stage: finds the credential (bearer header, cookie, or Envoy's jwt_authn
 * payload), verifies it with jose against the policy (algorithms, issuer, audience, exp/nbf
 * with skew), and caches verified tokens until they expire so each is verified once.
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
  const algorithms = [...options.algorithms];
  const allowed: ReadonlySet<string> = new Set(algorithms);
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
  const keys = deps.keys;
  // errors of the key source other than "no key fits this header" say nothing about the token
  const getKey: JWTVerifyGetKey | undefined =
    keys &&
    (async (protectedHeader, token) => {
      try {
        return await keys.getKey(protectedHeader, token);
      } catch (err) {
        if (isKeySelectionError(err)) throw err;
        throw new KeysUnavailable("keys unavailable", { cause: err });
      }
    });

  const invalid = (reason: ReasonCode, detail: string): IdentityOutcome => {
    stats.failures++;
    return { kind: "invalid", reason, detail };
  };

  const refuse = (
    token: string,
    nowMs: number,
    reason: ReasonCode,
    detail: string,
    lasting = LASTING.has(reason),
  ): Check => {
    if (lasting) refused.set(token, { reason, detail, until: nowMs + NEGATIVE_TTL_MS });
    return { ok: false, reason, detail };
  };

  async function verify(token: string, nowMs: number): Promise<Check> {
    if (getKey === undefined) {
      return { ok: false, reason: "identity.keys_unavailable", detail: "no key source configured" };
    }
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return refuse(token, nowMs, "identity.malformed", "undecodable JOSE header");
    }
    // before any key lookup: none, HS* (an RSA public key used as an HMAC secret) and
    // anything unlisted never reach a key
    if (typeof alg !== "string" || !allowed.has(alg)) {
      return refuse(
        token,
        nowMs,
        "identity.algorithm_not_allowed",
        `alg ${printable(alg)} is not allowed`,
      );
    }
    stats.verifications++;
    try {
      const payload = await verifyJwt(token, getKey, {
        algorithms,
        issuer: options.issuers,
        audience: options.audiences,
        clockTolerance: skew,
        currentDate: new Date(nowMs),
        requiredClaims: ["exp"],
      });
      const entry: CachedToken = {
        claims: deepFreeze({ ...payload }),
        exp: payload.exp as number,
        nbf: typeof payload.nbf === "number" ? payload.nbf : undefined,
      };
      verified.set(token, entry);
      deps.onVerification?.(true);
      return { ok: true, entry };
    } catch (err) {
      deps.onVerification?.(false);
      const [reason, detail] = classify(err);
      // an error jose did not name (a bug, a key of the wrong type) is not held against the token
      return refuse(
        token,
        nowMs,
        reason,
        detail,
        err instanceof errors.JOSEError && LASTING.has(reason),
      );
    }
  }

  const outcome = (check: Check, source: IdentitySource, cached: boolean): IdentityOutcome =>
    check.ok
      ? { kind: "verified", claims: check.entry.claims, source, cached }
      : invalid(check.reason, check.detail);

  function fromToken(
    token: string,
    nowMs: number,
    source: IdentitySource,
  ): Promise<IdentityOutcome> {
    if (token.length > MAX_TOKEN_BYTES) {
      return Promise.resolve(invalid("identity.malformed", "token larger than 8 KiB"));
    }
    const hit = verified.get(token);
    if (hit !== undefined) {
      // the same comparisons as jose's, on whole seconds
      const nowSec = Math.floor(nowMs / 1000);
      if (hit.exp <= nowSec - skew) {
        verified.delete(token);
        return Promise.resolve(invalid("identity.expired", "token expired"));
      }
      if (hit.nbf !== undefined && hit.nbf > nowSec + skew) {
        return Promise.resolve(invalid("identity.not_yet_valid", "nbf in the future"));
      }
      stats.cacheHits++;
      return Promise.resolve({ kind: "verified", claims: hit.claims, source, cached: true });
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
    return pending.then((check) => outcome(check, source, false));
  }

  function fromAuthorization(value: string, nowMs: number): Promise<IdentityOutcome> {
    // the length check first: the pattern never runs over an arbitrarily long header
    if (value.length > MAX_TOKEN_BYTES + 64) {
      return Promise.resolve(invalid("identity.malformed", "token larger than 8 KiB"));
    }
    const m = BEARER.exec(value);
    if (m === null) {
      return Promise.resolve(invalid("identity.malformed", `${header} is not a Bearer credential`));
    }
    return fromToken(m[1] as string, nowMs, "bearer");
  }

  function fromJwtAuthn(req: AccessRequest, nowMs: number): IdentityOutcome | undefined {
    const payload = req.metadata[jwtAuthn.namespace]?.[jwtAuthn.key];
    if (payload === undefined) return undefined;
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      return invalid("identity.claims_invalid", "jwt_authn payload is not an object");
    }
    // Envoy verified signature, issuer and audience; expiry is re-checked on riskgate's clock
    const claims = payload as Record<string, unknown>;
    if (typeof claims.exp === "number" && claims.exp <= Math.floor(nowMs / 1000) - skew) {
      return invalid("identity.expired", "jwt_authn payload expired");
    }
    return { kind: "verified", claims, source: "jwt_authn", cached: false };
  }

  return {
    identify(req, nowMs) {
      try {
        const auth = req.headers.get(header);
        if (auth !== undefined && auth !== "") return fromAuthorization(auth, nowMs);
        if (cookie !== undefined) {
          const value = cookieValue(req.headers.get("cookie"), cookie);
          if (value !== undefined && value !== "") return fromToken(value, nowMs, "cookie");
        }
        if (jwtAuthn.enabled) {
          const found = fromJwtAuthn(req, nowMs);
          if (found !== undefined) return Promise.resolve(found);
        }
        return Promise.resolve({ kind: "anonymous" });
      } catch {
        // unreachable by design; the stage still never throws
        return Promise.resolve(invalid("identity.malformed", "unreadable credential"));
      }
    },
    ready: () => keys?.ready() ?? Promise.resolve(),
    stats: () => ({ ...stats }),
  };
}

/**
 * jwtVerify, plus the case jose leaves to its caller: several keys fit the header (no kid, or
 * a kid shared by keys), so each is tried in turn.
 */
async function verifyJwt(
  token: string,
  getKey: JWTVerifyGetKey,
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    if (typeof err[Symbol.asyncIterator] !== "function") throw err;
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** Maps jose's (and the key source's) errors to a reason code and a token-free detail. */
function classify(err: unknown): [ReasonCode, string] {
  if (err instanceof KeysUnavailable) return ["identity.keys_unavailable", "keys unavailable"];
  if (err instanceof errors.JWTExpired) return ["identity.expired", "token expired"];
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "nbf":
      case "iat":
        // a time in the future; a time that is not a number is a broken claim
        return err.reason === "check_failed"
          ? ["identity.not_yet_valid", `${err.claim} in the future`]
          : ["identity.claims_invalid", `claim ${err.claim}: ${err.reason}`];
      case "iss":
        return ["identity.issuer_mismatch", "unexpected iss"];
      case "aud":
        return ["identity.audience_mismatch", "unexpected aud"];
      default:
        return ["identity.claims_invalid", `claim ${printable(err.claim)}: ${err.reason}`];
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return ["identity.bad_signature", "signature does not verify"];
  }
  if (err instanceof errors.JWKSNoMatchingKey) return ["identity.unknown_key", "no key for kid"];
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return ["identity.algorithm_not_allowed", "algorithm not allowed"];
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    return ["identity.keys_unavailable", "keys unavailable"];
  }
  return ["identity.malformed", "not a valid JWT"];
}

/** An attacker-chosen header value made safe for a log line. */
function printable(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value.slice(0, 16)) : typeof value;
}

/** Cached claims are shared by every request bearing the token: nothing may change them. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
