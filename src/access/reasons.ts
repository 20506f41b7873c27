/**
 * The closed set of reason codes a verdict can carry. Every point of a risk score and every
 * refusal is explained by one of these; the README's reason-code table is kept in step with
 * this registry by a test.
 */
export const REASONS = {
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
  "identity.unknown_key": "No key in the JWKS matches the token's kid, even after a refresh.",
  "identity.issuer_mismatch": "The token's iss is not one of identity.issuers.",
  "identity.audience_mismatch": "The token's aud does not name one of identity.audiences.",
  "identity.claims_invalid": "A required claim is missing or has the wrong type.",
  "identity.keys_unavailable":
    "The JWKS could not be fetched or read (or not within the decision's time budget), so the token could not be verified.",
  "license.tier_unknown": "The caller's tier claim names no tier of the policy (or is missing).",
  "license.entitlement_missing":
    "The caller's license does not include the route's required entitlement.",
  "license.route_unmatched": "No route rule matches and the policy's default is to deny.",
  "license.tier_not_allowed": "The route is restricted to tiers that do not include the caller's.",
  "velocity.subject": "The subject's request rate is near or over its tier's limit.",
  "velocity.org": "The org's request rate (all its subjects) is near or over its tier's limit.",
  "velocity.ip": "The client IP's request rate is near or over the tier's limit.",
  "velocity.device": "The device's request rate is near or over the tier's limit.",
  "velocity.sustained":
    "The subject kept a high share of its tier's per-window limit busy for a long window (paced scraping).",
  "velocity.population":
    "The subject keeps many times the average pace of its client class's subjects (a new token scraping under the limit).",
  "velocity.person_ceiling":
    "A person's session (browser class) kept up more requests over a long window than a person reading screens can.",
  "velocity.ip_any_tier":
    "The client IP's request rate is over the limit that applies whatever the tier.",
  "quota.exceeded": "The org (or subject) used up its tier's quota for the day or month.",
  "quota.near": "The org (or subject) used most of its tier's quota for the period.",
  "attempts.failed_subject": "Many recent denials for this subject (credential stuffing, probing).",
  "attempts.failed_ip": "Many recent denials from this client IP.",
  "attempts.distinct_subjects_ip":
    "Many distinct subjects from one client IP (credential stuffing, enumeration).",
  "attempts.distinct_subjects_network":
    "Many distinct subjects from one /24 or /48 network (distributed credential stuffing).",
  "attempts.distinct_subjects_asn":
    "Many distinct subjects from one ASN (credential stuffing spread over a provider's addresses).",
  "attempts.new_tokens_ip": "Many distinct tokens first seen from one client IP in the window.",
  "stuffing.org_new_country":
    "A subject with no trusted sighting yet comes from a country no trusted member of its org has used.",
  "stuffing.first_sighting_shared_ip":
    "A subject with no trusted sighting yet comes from a client IP that carried another org's people in the window.",
  "stuffing.many_orgs_ip":
    "The client IP carried person tokens of many orgs in the window, and the subject is not trusted on its network.",
  "geo.country_denied": "The client IP's country is not allowed for the caller's tier.",
  "geo.unknown_location": "The client IP has no known location, on a sensitive route.",
  "geo.impossible_travel": "The subject moved between locations faster than max_kmh allows.",
  "geo.new_country": "The subject is seen from a country it was not seen from before.",
  "geo.places":
    "The subject or its token is in use from more countries, ASNs or networks at once than allowed, from a network it is not trusted on.",
  "ip.blocklisted": "The client IP is on a block list.",
  "ip.allowlisted": "The client IP is on an allow list (lowers the score).",
  "ip.hosting_asn": "The client IP belongs to a hosting or datacenter network.",
  "device.new": "The subject uses a device id it was not seen with before.",
  "session.device_mismatch":
    "The login session is used from a device other than the one it is bound to, while that device uses it too.",
  "device.posture": "The device posture header is missing or not compliant.",
  "device.no_mtls": "The connection carries no mTLS client identity.",
  "device.missing": "A browser session (by its client class) sent no device id.",
  "usage.anomaly": "The subject's request rate is far above its own usual rate.",
  "request.oversized": "The declared request body is larger than allowed.",
  "request.unusual_method": "The HTTP method is unusual for an API (TRACE, CONNECT, WebDAV, ...).",
  "request.automation": "The user agent looks like automation.",
  "auth.weak": "The authentication methods (amr/acr) are weaker than the route asks for.",
  "auth.stale": "The last authentication (auth_time) is older than the route allows.",
  "auth.max_age":
    "The route's step-up max_age is not met (auth_time older, or absent): a challenge whatever the score.",
  "risk.downgraded":
    "Medium risk: the caller was served as its tier's downgrade_to tier instead of challenged.",
  "risk.sticky":
    "A recent risk challenge or deny of this subject still raises its risk (until it expires or a fresh login).",
  "challenge.cleared":
    "A valid clearance cookie (a passed browser challenge) lowers the score, and may clear sticky risk.",
  "challenge.clearance_forged":
    "A clearance cookie that is not riskgate's: bad signature, unknown kid, or not a clearance. Ignored.",
  "challenge.clearance_expired": "A clearance cookie past its lifetime. Ignored.",
  "challenge.clearance_rebound":
    "A clearance cookie replayed from another network, user agent or subject than it was issued to. Ignored.",
  "request.sensitivity": "The route is marked sensitive; touching it adds risk by itself.",
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
  "external.<name>":
    "An external score mapped to points: a source of signals.external_scores (a CDN bot score, WAF labels, Envoy metadata) or the scoring webhook (`external.webhook`); <name> is the source's or the band's `reason`.",
  "rule.<name>":
    "The policy rule <name> matched and forced its action (detail: the action; `shadow: would ...` for a shadow rule).",
} as const;

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
