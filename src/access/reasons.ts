import { type SignalReasonCode, signalReasons } from "./signals/index.js";

/**
 * Reason codes of the stages around the signals: identity, license, the decision's own notes,
 * the transports' refusals, failures and rules. Each signal declares its own codes
 * (signals/*.ts).
 */
const CORE_REASONS = {
  "identity.missing": "No credential was presented on a route that requires one.",
  "identity.malformed":
    "The credential is not a well-formed JWT: not canonical base64url, not 3 segments, or a crit header.",
  "identity.expired": "The token's exp is in the past (beyond the allowed clock skew).",
  "identity.not_yet_valid":
    "The token's nbf or iat is in the future (beyond the allowed clock skew).",
  "identity.lifetime_too_long":
    "The token's lifetime (exp - iat, or exp - now) is longer than identity.max_token_lifetime_seconds.",
  "identity.bad_signature": "The token's signature does not verify with the issuer's key.",
  "identity.algorithm_not_allowed":
    "The token's alg is not in identity.algorithms (alg none is never allowed).",
  "identity.unknown_key":
    "No key in the JWKS matches the token's kid, even after a refresh; or an API key that is in no key file.",
  "identity.revoked_key": "The API key is listed as revoked in the key file.",
  "identity.expired_key": "The API key's expiry (expires in the key file) has passed.",
  "identity.key_network":
    "The API key was used from an address outside the networks its key file entry allows.",
  "identity.issuer_mismatch": "The token's iss is not one of identity.issuers.",
  "identity.audience_mismatch": "The token's aud does not name one of identity.audiences.",
  "identity.claims_invalid": "A required claim is missing or has the wrong type.",
  "identity.keys_unavailable":
    "The JWKS could not be fetched or read (or not within the decision's time budget), so the token could not be verified.",
  "identity.peer_unknown":
    "The mTLS peer (principal or certificate name) matches no identity.mtls.peers pattern, on a route that needs the peer (peer: with_token).",
  "identity.peer_missing":
    "The request carries no mTLS peer identity on a route that needs one beside the user's token (peer: with_token).",
  "identity.inactive_token":
    "The introspection endpoint answered active: false for the opaque token (revoked, expired or unknown to the issuer).",
  "identity.introspection_unavailable":
    "The introspection endpoint was down, slow (over identity.introspection.timeout_ms), answered an error or garbage, or its breaker was open; the route's failure mode decided.",
  "license.tier_unknown": "The caller's tier claim names no tier of the policy (or is missing).",
  "license.entitlement_missing":
    "The caller's license does not include the route's required entitlement.",
  "license.route_unmatched": "No route rule matches and the policy's default is to deny.",
  "license.tier_not_allowed": "The route is restricted to tiers that do not include the caller's.",
  "auth.max_age":
    "The route's step-up max_age is not met (auth_time older, or absent): a challenge whatever the score.",
  "risk.no_challenge":
    "A machine client cannot answer a challenge: where a person would be challenged it was throttled (decisions.machine.retry_after_seconds), or denied where the route asks for a recent login.",
  "risk.downgraded":
    "Medium risk: the caller was served as its tier's downgrade_to tier instead of challenged.",
  "request.malformed":
    "The CheckRequest or forward-auth request lacks what a decision needs (no HTTP attributes, missing or contradictory forwarded headers, too large).",
  "request.ambiguous_path":
    "The path may mean something else to the upstream (an escaped slash or backslash, a backslash, a ; parameter, double or overlong encoding, a raw #); see ambiguous_paths.",
  "request.untrusted_proxy":
    "A forward-auth request came from a peer not in RISKGATE_HTTP_TRUSTED_PROXIES.",
  "request.unknown_dialect":
    "A forward-auth request whose dialect (nginx, forward, envoy) is neither in its path nor in its headers.",
  "failure.store": "The state store failed or timed out; the failure mode decided.",
  "failure.budget":
    "The decision ran out of its time budget after the caller was verified; the failure mode decided.",
  "failure.internal": "An unexpected internal error; the configured safe outcome decided.",
  "failure.webhook":
    "The scoring webhook timed out, failed, answered nonsense or its breaker was open; the route's failure mode decided.",
  "rule.<name>":
    "The policy rule <name> matched and forced its action (detail: the action; `shadow: would ...` for a shadow rule).",
} as const;

/**
 * The closed set of reason codes a verdict can carry: the stages' codes and every registered
 * signal's. Every point of a risk score and every refusal is explained by one of these;
 * docs/reference/reason-codes.md is kept in step with this registry by a test.
 */
export const REASONS: Readonly<Record<keyof typeof CORE_REASONS | SignalReasonCode, string>> =
  Object.freeze({ ...CORE_REASONS, ...signalReasons() });

/**
 * A reason code: a key of {@link REASONS}, `rule.<name>` for a policy rule that matched, or
 * `external.<name>` for an external score (names come from the policy).
 */
export type ReasonCode = keyof typeof REASONS | `rule.${string}` | `external.${string}`;

/** One explained contribution to a verdict. */
export interface Reason {
  readonly code: ReasonCode;
  /** Risk points this reason added (0 for refusals that are not scored). */
  readonly points: number;
  /** Short, non-secret detail for logs and the deny body (never a token or a header value). */
  readonly detail?: string;
}
