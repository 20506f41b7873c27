import {
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import { RiskgateError } from "../errors.js";
import { isKeySelectionError, type KeySource } from "./key-source.js";
import type { PolicyDocument } from "./policy.js";
import type { ReasonCode } from "./reasons.js";

/** One verification's result. `detail` never contains the token. */
export type Verification =
  | { readonly ok: true; readonly payload: JWTPayload }
  | {
      readonly ok: false;
      readonly reason: ReasonCode;
      readonly detail: string;
      /** The same token meets the same refusal on every try against the same policy. */
      readonly lasting: boolean;
    };

export interface TokenVerifier {
  /**
   * Checks the token's spelling and header, then its signature (jose) and claims against the
   * policy. Never rejects. `attempted` says whether a signature verification ran.
   */
  verify(token: string, nowMs: number): Promise<Verification & { readonly attempted: boolean }>;
}

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

const refusal = (reason: ReasonCode, detail: string, lasting = LASTING.has(reason)) =>
  ({ ok: false, reason, detail, lasting }) as const;

/**
 * The JWT verifier of the identify stage: refuses before any key lookup what can be refused
 * from the token's text (a spelling that is not canonical base64url, an unlisted alg, `crit`),
 * then verifies with jose (algorithms, issuer, audience, exp/nbf with skew) and applies the
 * time rules jose leaves out (iat in the future, the longest lifetime).
 */
export function createTokenVerifier(
  keys: KeySource | undefined,
  options: PolicyDocument["identity"],
): TokenVerifier {
  const algorithms = [...options.algorithms];
  const allowed: ReadonlySet<string> = new Set(algorithms);
  const skew = options.clock_skew_seconds;
  const maxLifetime = options.max_token_lifetime_seconds;
  // errors of the key source other than "no key fits this header" say nothing about the token
  const getKey: JWTVerifyGetKey | undefined =
    keys &&
    (async (protectedHeader, token) => {
      try {
        return await keys.getKey(protectedHeader, token);
      } catch (err) {
        if (isKeySelectionError(err) || isKeysUnavailable(err)) throw err;
        throw new RiskgateError(
          "RISKGATE_JWKS_UNAVAILABLE",
          "keys unavailable",
          {},
          { cause: err },
        );
      }
    });

  return {
    async verify(token, nowMs) {
      if (getKey === undefined) {
        return {
          ...refusal("identity.keys_unavailable", "no key source configured"),
          attempted: false,
        };
      }
      const early = beforeKeyLookup(token, allowed);
      if (early !== undefined) return { ...early, attempted: false };
      try {
        const payload = await verifyJwt(token, getKey, {
          algorithms,
          issuer: options.issuers,
          audience: options.audiences,
          clockTolerance: skew,
          currentDate: new Date(nowMs),
          requiredClaims: ["exp"],
        });
        const times = checkTimes(payload, nowMs, skew, maxLifetime);
        return { ...(times ?? { ok: true, payload }), attempted: true };
      } catch (err) {
        const [reason, detail] = classify(err);
        // an error jose did not name (a bug, a key of the wrong type) is not held against the token
        const lasting = err instanceof errors.JOSEError && LASTING.has(reason);
        return { ...refusal(reason, detail, lasting), attempted: true };
      }
    },
  };
}

/**
 * What the token's text alone refuses, before any key lookup. A JWS has exactly one spelling in
 * canonical base64url, so each token string is one cache entry: `+/=`, padding or stray low bits
 * would let one signed token be spelled many ways, each missing the verified-token cache. alg
 * none, HS* (an RSA public key used as an HMAC secret) and anything unlisted never reach a key;
 * nor does a `crit` extension riskgate does not implement (RFC 7515 4.1.11: refuse the token).
 */
function beforeKeyLookup(token: string, allowed: ReadonlySet<string>) {
  const segments = token.split(".");
  if (segments.length !== 3) {
    return refusal("identity.malformed", `${segments.length} segments, a JWS has 3`);
  }
  if (!segments.every(isCanonicalBase64url)) {
    return refusal("identity.malformed", "not canonical base64url");
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return refusal("identity.malformed", "undecodable JOSE header");
  }
  if (typeof header.alg !== "string" || !allowed.has(header.alg)) {
    return refusal("identity.algorithm_not_allowed", `alg ${printable(header.alg)} is not allowed`);
  }
  if (header.crit !== undefined) {
    return refusal("identity.malformed", "crit header parameters are not supported");
  }
  return undefined;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * RFC 7515 base64url as RFC 4648 section 3.5 makes it canonical: the URL-safe alphabet only, no
 * padding, no impossible length, and the bits past the last whole byte all zero.
 */
export function isCanonicalBase64url(segment: string): boolean {
  if (!BASE64URL.test(segment)) return false;
  const rest = segment.length % 4;
  if (rest === 0) return true;
  if (rest === 1) return false;
  const last = ALPHABET.indexOf(segment.charAt(segment.length - 1));
  // 2 characters carry 1 byte (4 spare bits), 3 characters carry 2 bytes (2 spare bits)
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

/**
 * The time rules on verified claims, in seconds like the claims: exp in the past (beyond the
 * skew), nbf or iat in the future (beyond the skew), a lifetime longer than the policy allows
 * (exp - iat, or exp - now when there is no iat, then with the skew). jose checks exp and nbf
 * but iat only with maxTokenAge, which is a different rule (age, not issue time in the future).
 * Returns undefined when the times are good.
 */
export function checkTimes(
  claims: Readonly<Record<string, unknown>>,
  nowMs: number,
  skew: number,
  maxLifetime: number,
) {
  const now = Math.floor(nowMs / 1000);
  const { exp, nbf, iat } = claims;
  if (typeof exp === "number" && exp <= now - skew) {
    return refusal("identity.expired", "token expired");
  }
  if (typeof nbf === "number" && nbf > now + skew) {
    return refusal("identity.not_yet_valid", "nbf in the future");
  }
  if (typeof iat === "number" && iat > now + skew) {
    return refusal("identity.not_yet_valid", "iat in the future");
  }
  if (typeof exp === "number") {
    // with iat the lifetime is a property of the token; without, it shrinks as time passes
    const lifetime = typeof iat === "number" ? exp - iat : exp - now - skew;
    if (!(lifetime <= maxLifetime)) {
      return refusal(
        "identity.lifetime_too_long",
        `lifetime over ${maxLifetime} s`,
        typeof iat === "number",
      );
    }
  }
  return undefined;
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

function isKeysUnavailable(err: unknown): boolean {
  return err instanceof RiskgateError && err.code === "RISKGATE_JWKS_UNAVAILABLE";
}

/** Maps jose's (and the key source's) errors to a reason code and a token-free detail. */
function classify(err: unknown): [ReasonCode, string] {
  if (isKeysUnavailable(err)) return ["identity.keys_unavailable", "keys unavailable"];
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
