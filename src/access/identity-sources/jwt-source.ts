import { bearerCredential } from "../credentials/bearer.js";
import { cookieCredential } from "../credentials/cookie.js";
import { MAX_TOKEN_BYTES, TOO_LARGE_DETAIL } from "../credentials/credential.js";
import type { KeySource } from "../key-source.js";
import type { Caller } from "../license.js";
import type { PolicyDocument } from "../policy.js";
import { createTokenVerifier } from "../token-verifier.js";
import type { IdentitySource, SourceOutcome } from "./identity-source.js";
import { createVerifiedTokens, type TokenCheck } from "./verified-tokens.js";

/** The JWT source's counters, read by the identifier's stats. */
export interface JwtCounts {
  /** Signature verifications performed (cache misses that reached jose). */
  readonly verifications: number;
  readonly cacheHits: number;
}

/**
 * JWTs riskgate verifies itself: from the bearer header (or the one the policy names), else the
 * session cookie. Each token is verified once (token-verifier.ts) and kept with its caller
 * until it expires (verified-tokens.ts).
 */
export function createJwtSource(
  deps: {
    keys: KeySource | undefined;
    /** Called after each signature verification (cache misses only): verified or refused. */
    onVerification?: (ok: boolean) => void;
    callerOf: (claims: Readonly<Record<string, unknown>>) => Caller | undefined;
  },
  options: PolicyDocument["identity"],
): IdentitySource & { readonly counts: JwtCounts } {
  const tokens = createVerifiedTokens(
    createTokenVerifier(deps.keys, options),
    {
      skewSeconds: options.clock_skew_seconds,
      maxLifetimeSeconds: options.max_token_lifetime_seconds,
      maxEntries: options.token_cache.max_entries,
      callerOf: deps.callerOf,
    },
    deps.onVerification,
  );
  const { header, cookie } = options.sources;
  return {
    method: "jwt",
    counts: tokens.counts,
    identify(req, nowMs) {
      const found = bearerCredential(req, header) ?? cookieCredential(req, cookie);
      if (found === undefined) return undefined;
      if (found.kind === "unusable") {
        return { kind: "invalid", reason: found.reason, detail: found.detail };
      }
      if (found.kind !== "token") return undefined;
      if (found.token.length > MAX_TOKEN_BYTES) {
        return { kind: "invalid", reason: "identity.malformed", detail: TOO_LARGE_DETAIL };
      }
      const source = found.source;
      const check = tokens.check(found.token, nowMs);
      return check instanceof Promise
        ? check.then((c) => outcomeOf(c, source))
        : outcomeOf(check, source);
    },
    ready: () => deps.keys?.ready() ?? Promise.resolve(),
  };
}

function outcomeOf(check: TokenCheck, source: "bearer" | "cookie"): SourceOutcome {
  if (!check.ok) return { kind: "invalid", reason: check.reason, detail: check.detail };
  const { caller, claims } = check.entry;
  return { kind: "verified", caller, claims, source, cached: check.cached };
}
