import { z } from "zod";
import { claimPath, seconds } from "./policy-fields.js";

/** The policy's `identity` section: issuers, audiences, keys, algorithms and claim paths. */

/** JWS algorithms riskgate accepts. `none` and HS* are not representable: no alg confusion. */
export const ASYMMETRIC_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

const jwks = z
  .strictObject({
    uri: z.url().optional(),
    file: z.string().min(1).optional(),
    /** How long fetched keys are trusted before a background refresh. */
    cache_max_age_seconds: seconds.default(600),
    /** Unknown kid triggers a refetch, at most once per this many seconds. */
    cooldown_seconds: seconds.default(30),
    /** Fetch timeout. */
    timeout_ms: z.number().int().positive().default(2000),
  })
  .refine((j) => (j.uri === undefined) !== (j.file === undefined), {
    message: "set exactly one of jwks.uri or jwks.file",
  });

/**
 * A mesh peer's identity as the policy grants it: `principal` is a SPIFFE id or a certificate
 * URI/DNS name, exact or ending in `*` (a prefix: `spiffe://cluster.local/ns/billing/sa/*`).
 */
const peer = z.strictObject({
  principal: z
    .string()
    .min(1)
    .regex(/^[^*]+\*?$/, "exact, or a prefix ending in a single *"),
  /** The caller's subject; default: the peer's matched name. */
  subject: z.string().min(1).optional(),
  org: z.string().default(""),
  tier: z.string().min(1),
  entitlements: z.array(z.string().min(1)).default([]),
  /** Mesh peers are services: machines unless the policy says otherwise. */
  client_class: z.enum(["machine", "browser", "unknown"]).default("machine"),
});

/** mTLS peers: the principal Envoy verified (or the certificate's SANs) mapped to a caller. */
const mtls = z.strictObject({ peers: z.array(peer).min(1) });

export type MtlsPolicy = z.output<typeof mtls>;

/** Where an API key may be presented: a named header, `Authorization: ApiKey`, or `Bearer`. */
export const apiKeyPlace = z.enum(["header", "apikey", "bearer"]);

/** API keys: looked up by their SHA-256 in a key file (one JSON object a line). */
const apiKeys = z.strictObject({
  /** The key file (relative to the policy file); reloaded when it changes. */
  file: z.string().min(1),
  /** The header of `from: header`. */
  header: z.string().min(1).toLowerCase().default("x-api-key"),
  /** Where keys are read, in order (a route may say otherwise: routes[].api_key). */
  from: z.array(apiKeyPlace).default(["header", "apikey"]),
});

export type ApiKeysPolicy = z.output<typeof apiKeys>;

/** Opaque access tokens, read by the issuer's RFC 7662 introspection endpoint. */
const introspection = z.strictObject({
  endpoint: z.url(),
  /** riskgate's client id at the endpoint (HTTP Basic, client_secret_basic). */
  client_id: z.string().min(1),
  /** File holding the client secret (relative to the policy file); never the secret itself. */
  client_secret_file: z.string().min(1),
  /** Time budget of one call; below failure.budget_ms, so a slow endpoint is named as such. */
  timeout_ms: z.number().int().positive().max(5000).default(60),
  /** The longest an answer is reused (the token's exp caps it too). */
  cache_max_seconds: z.number().int().min(0).max(3600).default(60),
  cache_max_entries: z.number().int().positive().default(10_000),
  breaker: z
    .strictObject({
      failures: z.number().int().positive().default(5),
      open_seconds: z.number().int().positive().default(10),
    })
    .prefault({}),
});

export type IntrospectionPolicy = z.output<typeof introspection>;

export const identity = z.strictObject({
  issuers: z.array(z.string().min(1)).min(1),
  audiences: z.array(z.string().min(1)).min(1),
  /** Omit in dev mode: riskgate then trusts its own dev key (see `riskgate token`). */
  jwks: jwks.optional(),
  algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).default(["RS256", "ES256", "EdDSA"]),
  clock_skew_seconds: seconds.max(300).default(30),
  /**
   * The longest lifetime a token may claim: exp - iat, or exp - now (plus the skew) when there
   * is no iat. Always on, so a validly signed token with a far exp (1e300) does not live
   * forever; raise it for an issuer that mints longer-lived tokens.
   */
  max_token_lifetime_seconds: z.number().int().positive().default(86_400),
  sources: z
    .strictObject({
      /** Header carrying `Bearer <jwt>`. */
      header: z.string().min(1).toLowerCase().default("authorization"),
      /** Cookie carrying the raw JWT (off when unset). */
      cookie: z.string().min(1).optional(),
      /** Trust the payload Envoy's jwt_authn filter verified and put into dynamic metadata. */
      jwt_authn: z
        .strictObject({
          enabled: z.boolean().default(false),
          namespace: z.string().min(1).default("envoy.filters.http.jwt_authn"),
          /** `payload_in_metadata` key of the jwt_authn provider. */
          key: z.string().min(1).default("jwt_payload"),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Callers identified by their mTLS peer identity (off when unset). */
  mtls: mtls.optional(),
  /** Callers identified by an API key (off when unset). */
  api_keys: apiKeys.optional(),
  /** Opaque Bearer tokens (not JWTs) checked at an RFC 7662 endpoint (off when unset). */
  introspection: introspection.optional(),
  claims: z
    .strictObject({
      subject: claimPath.default("sub"),
      /**
       * A token without a `sub` (PingOne's client-credentials tokens) is named by the first of
       * these claims it carries: its OAuth client. [] refuses such a token (no subject).
       */
      subject_fallback: z.array(claimPath).default(["client_id"]),
      org: claimPath.default("org"),
      tier: claimPath.default("tier"),
      entitlements: claimPath.default("entitlements"),
      amr: claimPath.default("amr"),
      acr: claimPath.default("acr"),
      auth_time: claimPath.default("auth_time"),
    })
    .prefault({}),
  token_cache: z
    .strictObject({ max_entries: z.number().int().positive().default(50_000) })
    .prefault({}),
});
