import { RE2JS } from "re2js";
import { z } from "zod";
import { REASONS, type ReasonCode } from "../access/reasons.js";
import { parseCidr } from "../geo/ip-address.js";

/**
 * The policy file's schema. Every object is strict (unknown keys are errors, so a typo never
 * silently disables a rule) and every field has a safe default. The README's policy reference
 * documents the same fields.
 */

const seconds = z.number().int().nonnegative();
/** How a challenge is rendered: RFC 9470 step-up, a header for the upstream, or a page a person passes. */
const challengeStyle = z.enum(["step_up", "header", "interactive"]);
const claimPath = z.string().min(1).describe("dot-separated path into the JWT payload");

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

const identity = z.strictObject({
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
  claims: z
    .strictObject({
      subject: claimPath.default("sub"),
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

const countryCode = z
  .string()
  .regex(/^[A-Za-z]{2}$/, "use ISO 3166-1 alpha-2 codes")
  .toUpperCase();
const points = z.number().int().min(0).max(100);

const failureMode = z.enum(["open", "closed", "safe_methods_only"]);
const mode = z.enum(["enforce", "shadow"]);
const sensitivity = z.enum(["low", "medium", "high"]);

const thresholds = z
  .strictObject({
    challenge_at: z.number().int().min(1).max(101),
    deny_at: z.number().int().min(1).max(101),
  })
  .refine((t) => t.challenge_at <= t.deny_at, {
    message: "challenge_at must not be above deny_at",
  });

const tier = z.strictObject({
  entitlements: z.array(z.string().min(1)).default([]),
  /** Requests per velocity window; over a limit the caller is throttled (429 + Retry-After). */
  limits: z
    .strictObject({
      /** Per subject (user or client). */
      requests_per_window: z.number().int().positive().optional(),
      /** Per org, all its subjects together. */
      org_requests_per_window: z.number().int().positive().optional(),
      /** Per client IP. */
      ip_requests_per_window: z.number().int().positive().optional(),
      /** Per device id (see signals.device). */
      device_requests_per_window: z.number().int().positive().optional(),
    })
    .optional(),
  /** Usage quota per org (per subject when the caller has no org), per calendar day or month (UTC). */
  quota: z
    .strictObject({
      requests: z.number().int().positive(),
      period: z.enum(["day", "month"]),
    })
    .optional(),
  /** ISO 3166-1 alpha-2 country codes: `allow` admits only those, `deny` refuses those. */
  countries: z
    .strictObject({
      allow: z.array(countryCode).optional(),
      deny: z.array(countryCode).optional(),
    })
    .optional(),
  risk: z
    .strictObject({
      challenge_at: z.number().int().min(1).max(101).default(40),
      deny_at: z.number().int().min(1).max(101).default(80),
      /** Stricter (or looser) thresholds on routes of a given sensitivity. */
      by_sensitivity: z.partialRecord(sensitivity, thresholds).default({}),
    })
    .refine((t) => t.challenge_at <= t.deny_at, {
      message: "challenge_at must not be above deny_at",
    })
    .prefault({}),
  /** Medium risk (between challenge_at and deny_at) downgrades to this tier instead of a challenge when it grants the route. */
  downgrade_to: z.string().min(1).optional(),
  failure: failureMode.optional(),
  mode: mode.optional(),
});

const pathMatch = z.union([
  z.strictObject({ exact: z.string().startsWith("/") }),
  z.strictObject({ prefix: z.string().startsWith("/") }),
  z.strictObject({
    /** An RE2 regular expression (as Envoy's `safe_regex`) matched against the whole path. */
    pattern: z.string().min(1).superRefine(checkRe2),
  }),
]);

const route = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, "use letters, digits, _ . -"),
  match: z
    .strictObject({
      hosts: z.array(z.string().min(1).toLowerCase()).optional(),
      path: pathMatch.optional(),
      methods: z.array(z.string().min(1).toUpperCase()).optional(),
    })
    .prefault({}),
  /** `required`: no credential -> 401; `optional`: anonymous callers pass as tier `anonymous_tier`; `none`: never looked at. */
  auth: z.enum(["required", "optional", "none"]).default("required"),
  entitlement: z.string().min(1).optional(),
  tiers: z.array(z.string().min(1)).optional(),
  sensitivity: sensitivity.default("low"),
  /** Per-route step-up requirements (RFC 9470). */
  step_up: z
    .strictObject({
      acr_values: z.string().min(1).optional(),
      max_age_seconds: seconds.optional(),
    })
    .optional(),
  /** Ask the scoring webhook (signals.scoring_webhook) about requests of this route; others never call it. */
  scoring_webhook: z.boolean().default(false),
  /** This route's challenge style (else `decisions.challenge.style`). */
  challenge_style: challengeStyle.optional(),
  failure: failureMode.optional(),
  mode: mode.optional(),
});

/** A reason code of the registry (src/access/reasons.ts). */
const reasonCode = z.enum(Object.keys(REASONS) as [ReasonCode, ...ReasonCode[]]);

/** The tail of an `external.<name>` reason code: lower-case letters, digits and `_`. */
const externalName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_]{0,62}$/, "use lower-case letters, digits, _ (up to 63)");

/** Points (negative lowers the score) and the reason a value maps to. */
const externalMapping = z.strictObject({
  points: z.number().int().min(-100).max(100).default(0),
  /** Reason code `external.<reason>` (default: the source's name), for rules to match. */
  reason: externalName.optional(),
});

const cidr = z.string().superRefine((text, ctx) => {
  const parsed = parseCidr(text);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
});

/**
 * One score or label a tool in front of riskgate sets: read from a request header (believed only
 * from the trusted proxy hops) or from Envoy dynamic metadata (set by another filter), parsed as a
 * number in a range or as labels, and mapped to points and a reason code.
 */
const externalSource = z
  .strictObject({
    name: externalName,
    /** Request header (lower-cased) the tool sets. */
    header: z.string().min(1).toLowerCase().optional(),
    /** Envoy `metadata_context.filter_metadata` namespace and dot path inside it. */
    metadata: z.strictObject({ namespace: z.string().min(1), path: claimPath }).optional(),
    /**
     * The edge proxy (the trusted hop the client connected to) must be in one of these CIDRs for
     * the header to count; unset: any request that came through RISKGATE_TRUSTED_HOPS counts.
     */
    trusted_proxies: z.array(cidr).optional(),
    /** The value is a number in [min, max]; the first band holding it maps it. */
    number: z
      .strictObject({
        min: z.number(),
        max: z.number(),
        bands: z
          .array(
            externalMapping
              .extend({ min: z.number(), max: z.number() })
              .refine((b) => b.min <= b.max, {
                message: "min must not be above max",
              }),
          )
          .min(1),
      })
      .refine((n) => n.min <= n.max, { message: "min must not be above max" })
      .optional(),
    /** The value is one or more comma-separated labels (case-insensitive); each known one maps. */
    labels: z.record(z.string().min(1).toLowerCase(), externalMapping).optional(),
  })
  .refine((s) => (s.header === undefined) !== (s.metadata === undefined), {
    message: "set exactly one of header or metadata",
  })
  .refine((s) => (s.number === undefined) !== (s.labels === undefined), {
    message: "set exactly one of number or labels",
  })
  .refine((s) => s.metadata === undefined || s.trusted_proxies === undefined, {
    message: "trusted_proxies applies to header sources (Envoy sets metadata itself)",
  });

/**
 * A fraud-scoring service riskgate POSTs the request's context to, on routes that set
 * `scoring_webhook: true`, in parallel with the store read.
 */
const scoringWebhook = z
  .strictObject({
    enabled: z.boolean().default(false),
    url: z.url().optional(),
    /** The call's own budget; past it the route's failure mode decides. */
    timeout_ms: z.number().int().positive().max(5000).default(50),
    /** Send the subject and org as they are instead of their HMAC pseudonyms (RISKGATE_SUBJECT_SALT). */
    plain_subject: z.boolean().default(false),
    cache: z
      .strictObject({
        /** How long one answer is reused for the same subject and network (0 = no cache). */
        ttl_seconds: seconds.default(60),
        max_entries: z.number().int().positive().default(10_000),
      })
      .prefault({}),
    breaker: z
      .strictObject({
        /** Consecutive failures that open the breaker. */
        failures: z.number().int().positive().default(5),
        /** How long it stays open before one probe call may try. */
        open_seconds: z.number().int().positive().default(10),
      })
      .prefault({}),
    /**
     * A `score` (0-100) maps by the first band holding it; an answer with `points` uses them as
     * is. The default scales a service's 0-100 fraud score like the thresholds: 60 points alone
     * reach a challenge (40) but not a deny (80).
     */
    bands: z
      .array(
        externalMapping.extend({ min: z.number(), max: z.number() }).refine((b) => b.min <= b.max, {
          message: "min must not be above max",
        }),
      )
      .default([
        // first match wins: 90+ is near-certain fraud, 70+ likely, 50+ doubtful
        { min: 90, max: 100, points: 60 },
        { min: 70, max: 100, points: 30 },
        { min: 50, max: 100, points: 10 },
      ]),
  })
  .refine((w) => !w.enabled || w.url !== undefined, { message: "set url when enabled" });

const signals = z
  .strictObject({
    client_class: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Claims whose value names the class (Auth0 `gty`, Entra ID `idtyp`, your own). */
        claims: z.array(claimPath).default(["client_class", "gty", "idtyp"]),
        machine_values: z
          .array(z.string().min(1).toLowerCase())
          .default(["machine", "client-credentials", "client_credentials", "app", "service"]),
        browser_values: z.array(z.string().min(1).toLowerCase()).default(["browser", "user"]),
        /** A subject equal to one of these claims is the OAuth client itself: a machine. */
        client_id_claims: z.array(claimPath).default(["azp", "client_id", "cid"]),
        /** A token read from the session cookie is a browser session. */
        cookie_is_browser: z.boolean().default(true),
        /**
         * A token carrying one of these claims records an interactive login (OIDC `auth_time`,
         * `amr`): a person's session, classed browser. [] turns this evidence off.
         */
        person_claims: z.array(claimPath).default(["auth_time", "amr"]),
        /** Reason codes that describe every legitimate machine client, dropped on machine tokens. */
        machine_skips: z
          .array(reasonCode)
          .default([
            "auth.weak",
            "auth.stale",
            "device.posture",
            "device.no_mtls",
            "request.automation",
            "ip.hosting_asn",
            "geo.impossible_travel",
            "geo.places",
          ]),
      })
      .prefault({}),
    velocity: z
      .strictObject({
        enabled: z.boolean().default(true),
        window_seconds: z.number().int().positive().default(60),
        /** Points once the subject used this share of its limit. */
        near_limit_ratio: z.number().gt(0).lte(1).default(0.8),
        near_limit_points: z.number().int().min(0).max(100).default(15),
        /** Requests per window from one client IP whatever the caller's tier (unset: none). */
        ip_requests_per_window: z.number().int().positive().optional(),
        /**
         * The subject's pace in the velocity window against its client class's average pace
         * (signals/population-pace.ts): a new token is not blind.
         */
        population: z
          .strictObject({
            enabled: z.boolean().default(false),
            /** Client classes measured against their own population. */
            classes: z.array(z.enum(["browser", "machine", "unknown"])).default(["browser"]),
            /** Window of the class's average (trusted requests / distinct subjects). */
            window_seconds: z.number().int().positive().default(300),
            /** Scores above this multiple of the class's average per-subject pace. */
            multiple: z.number().gt(1).default(10),
            /** Requests in the velocity window below which nothing scores. */
            min_requests: z.number().int().positive().default(30),
            /** Distinct subjects of the class in the window before its average is trusted. */
            min_subjects: z.number().int().positive().default(5),
            points: points.default(30),
          })
          .prefault({}),
        /** The subject's rate over a long window against its tier's per-window limit. */
        sustained: z
          .strictObject({
            window_seconds: z.number().int().positive().default(3600),
            /** Share of the tier's limit, kept up over the whole window, that scores (0 = off). */
            ratio: z.number().min(0).max(1).default(0.5),
            points: points.default(25),
          })
          .prefault({}),
        /**
         * A browser-class session's requests over a long window, whatever its tier
         * (velocity.ts `personCeiling`): the floor when its class has no population to compare.
         */
        person_ceiling: z
          .strictObject({
            enabled: z.boolean().default(false),
            window_seconds: z.number().int().positive().default(600),
            /** Requests in the window above which the session scores. */
            requests: z.number().int().positive().default(1200),
            points: points.default(30),
          })
          .prefault({}),
      })
      .prefault({}),
    weak_auth: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** amr values that count as strong (any one suffices). */
        strong_amr: z.array(z.string().min(1)).default(["mfa", "hwk", "otp", "sms", "fpt", "face"]),
        /** acr values that count as strong. */
        strong_acr: z.array(z.string().min(1)).default([]),
        points: z.number().int().min(0).max(100).default(20),
        /** Extra points when the route is high sensitivity. */
        high_sensitivity_points: z.number().int().min(0).max(100).default(30),
      })
      .prefault({}),
    stale_auth: z
      .strictObject({
        enabled: z.boolean().default(true),
        max_age_seconds: seconds.default(12 * 3600),
        points: z.number().int().min(0).max(100).default(10),
      })
      .prefault({}),
    /**
     * Sticky risk: after a risk challenge or deny, the subject carries `points` for
     * `duration_seconds`, or until it authenticates afresh (`auth_time` after the refusal).
     */
    sticky_risk: z
      .strictObject({
        enabled: z.boolean().default(false),
        points: points.default(20),
        duration_seconds: z.number().int().positive().default(900),
      })
      .prefault({}),
    failed_attempts: z
      .strictObject({
        enabled: z.boolean().default(true),
        window_seconds: z.number().int().positive().default(600),
        /** Denials of this subject in the window before it scores. */
        subject_threshold: z.number().int().positive().default(5),
        /** Denials from this IP in the window before it scores. */
        ip_threshold: z.number().int().positive().default(20),
        points: points.default(20),
        /** Distinct subjects seen from one IP in the window before it scores (credential stuffing). */
        distinct_subjects_per_ip: z.number().int().positive().default(10),
        distinct_subjects_points: points.default(15),
        /** Distinct subjects from one /24 (IPv4) or /48 (IPv6) network in the window before it scores (0 = off). */
        distinct_subjects_per_network: z.number().int().nonnegative().default(20),
        /** Distinct subjects from one ASN in the window before it scores (0 = off). */
        distinct_subjects_per_asn: z.number().int().nonnegative().default(100),
        /** Distinct tokens first seen from one IP in the window before it scores (0 = off). */
        distinct_tokens_per_ip: z.number().int().nonnegative().default(20),
        /** Count risk denials and challenges as failed attempts too, not only authentication and license denials. */
        count_risk_refusals: z.boolean().default(true),
      })
      .prefault({}),
    /**
     * Credential stuffing judged against the population (signals/stuffing.ts): a never-trusted
     * subject from a country its org never used, and one IP carrying many orgs' people.
     */
    stuffing: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Points when a subject with no trusted sighting comes from a country no trusted member of its org used (0 = off). */
        org_new_country_points: points.default(50),
        /** Distinct orgs of person tokens from one IP in the window before it scores (0 = off). */
        distinct_orgs_per_ip: z.number().int().nonnegative().default(3),
        distinct_orgs_window_seconds: z.number().int().positive().default(86400),
        distinct_orgs_points: points.default(50),
        /** The same count for a subject with no trusted sighting at all (0 = off). */
        first_sighting_orgs_per_ip: z.number().int().nonnegative().default(2),
        first_sighting_points: points.default(50),
        /** How long a subject's trusted networks and an org's trusted countries are remembered. */
        remember_seconds: z.number().int().positive().default(7776000),
        /** How long a subject must have been trusted before its requests teach its org. */
        org_learning_seconds: z.number().int().nonnegative().default(3600),
        max_subject_networks: z.number().int().positive().default(32),
        max_org_countries: z.number().int().positive().default(64),
        max_org_networks: z.number().int().positive().default(1024),
      })
      .prefault({}),
    geo: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Points when the client IP has no location (unknown or private) on a route of medium or high sensitivity. */
        unknown_location_points: points.default(0),
      })
      .prefault({}),
    impossible_travel: z
      .strictObject({
        enabled: z.boolean().default(true),
        max_kmh: z.number().positive().default(900),
        /** Shorter hops are ignored: geo databases place one network in several nearby cities. */
        min_distance_km: z.number().nonnegative().default(150),
        points: points.default(40),
        /** How long a subject's last location is remembered. */
        remember_seconds: z
          .number()
          .int()
          .positive()
          .default(30 * 86400),
      })
      .prefault({}),
    places: z
      .strictObject({
        enabled: z.boolean().default(false),
        window_seconds: z.number().int().positive().default(3600),
        /** More distinct countries than this per subject or token in the window scores. */
        max_countries: z.number().int().nonnegative().default(1),
        /** More distinct ASNs than this (0 = not counted). */
        max_asns: z.number().int().nonnegative().default(2),
        /** More distinct /24 (IPv4) or /48 (IPv6) networks than this (0 = not counted). */
        max_networks: z.number().int().nonnegative().default(4),
        points: points.default(50),
        /** Count per token too (a hash of its jti, or of its subject and iat). */
        per_token: z.boolean().default(true),
        /** An authentication younger than this clears the signal (the caller proved itself there). */
        fresh_auth_seconds: seconds.default(900),
        /** How long a trusted network (one an allowed request came from) is remembered. */
        remember_seconds: z
          .number()
          .int()
          .positive()
          .default(30 * 86400),
        max_known_networks: z.number().int().positive().max(1000).default(32),
      })
      .prefault({}),
    session_binding: z
      .strictObject({
        enabled: z.boolean().default(false),
        points: points.default(50),
        /** Another device within this many seconds of the bound device is parallel use. */
        concurrent_seconds: seconds.default(300),
        /** How long a session's binding is kept (a day: a long identity-provider session). */
        remember_seconds: z.number().int().positive().default(86400),
      })
      .prefault({}),
    new_country: z
      .strictObject({
        enabled: z.boolean().default(true),
        points: points.default(15),
        remember_seconds: z
          .number()
          .int()
          .positive()
          .default(90 * 86400),
        max_countries: z.number().int().positive().max(250).default(32),
      })
      .prefault({}),
    ip_reputation: z
      .strictObject({
        enabled: z.boolean().default(true),
        /**
         * Block lists (FireHOL netset, Spamhaus DROP, one IP a line): a match adds `points`, or
         * with `action: deny` refuses the request whatever the score (a hard block).
         */
        block: z
          .array(
            z.strictObject({
              file: z.string().min(1),
              points: points.default(50),
              action: z.enum(["score", "deny"]).default("score"),
            }),
          )
          .default([]),
        /**
         * Allow lists (office CIDRs): a match subtracts `points`. It never lifts a block list's
         * `action: deny` unless `overrides_block: true`.
         */
        allow: z
          .array(
            z.strictObject({
              file: z.string().min(1),
              points: points.default(20),
              overrides_block: z.boolean().default(false),
            }),
          )
          .default([]),
      })
      .prefault({}),
    hosting_asn: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** ASN list (one number a line, `AS` prefix allowed); needs ASN data (bundled in embedded mode, else RISKGATE_GEO_ASN_FILES). */
        file: z.string().min(1).optional(),
        points: points.default(15),
      })
      .refine((h) => !h.enabled || h.file !== undefined, { message: "set file when enabled" })
      .prefault({}),
    device: z
      .strictObject({
        enabled: z.boolean().default(true),
        header: z.string().min(1).toLowerCase().default("x-device-id"),
        cookie: z.string().min(1).optional(),
        new_device_points: points.default(10),
        remember_seconds: z
          .number()
          .int()
          .positive()
          .default(90 * 86400),
        max_devices: z.number().int().positive().max(1000).default(20),
        /** Header an MDM-aware proxy sets; absent or not in `posture_ok` adds `posture_points`. Off when unset. */
        posture_header: z.string().min(1).toLowerCase().optional(),
        posture_ok: z.array(z.string()).default(["compliant", "true"]),
        posture_points: points.default(15),
        /** Points when the connection has no mTLS principal (0 = off). */
        no_mtls_points: points.default(0),
        /** Points when a browser session (see client_class) sends no device id (0 = off). */
        missing_points: points.default(0),
      })
      .prefault({}),
    usage_anomaly: z
      .strictObject({
        enabled: z.boolean().default(true),
        bucket_seconds: z.number().int().positive().default(60),
        /** EWMA weight of the newest bucket. */
        alpha: z.number().gt(0).lt(1).default(0.1),
        /** Buckets seen before the baseline is trusted. */
        min_samples: z.number().int().positive().default(10),
        /** How many standard deviations above the mean counts as anomalous. */
        sigmas: z.number().positive().default(4),
        /** Requests in the current bucket below which nothing is anomalous. */
        min_requests: z.number().int().positive().default(20),
        points: points.default(20),
      })
      .prefault({}),
    request_shape: z
      .strictObject({
        enabled: z.boolean().default(true),
        max_body_bytes: z
          .number()
          .int()
          .positive()
          .default(10 * 1024 * 1024),
        oversized_points: points.default(15),
        unusual_methods: z
          .array(z.string().min(1).toUpperCase())
          .default([
            "TRACE",
            "CONNECT",
            "TRACK",
            "DEBUG",
            "PROPFIND",
            "PROPPATCH",
            "MKCOL",
            "COPY",
            "MOVE",
            "LOCK",
            "UNLOCK",
          ]),
        unusual_method_points: points.default(15),
        /** Case-insensitive substrings of automation user agents. */
        automation_user_agents: z
          .array(z.string().min(1).toLowerCase())
          .default([
            "python-requests",
            "go-http-client",
            "headlesschrome",
            "phantomjs",
            "scrapy",
            "curl/",
            "wget/",
            "libwww-perl",
            "okhttp",
          ]),
        automation_points: points.default(10),
      })
      .prefault({}),
    sensitivity: z
      .strictObject({
        enabled: z.boolean().default(true),
        points: z
          .strictObject({
            low: z.number().int().min(0).max(100).default(0),
            medium: z.number().int().min(0).max(100).default(5),
            high: z.number().int().min(0).max(100).default(15),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Scores and labels set by tools in front of riskgate (a CDN's bot score, WAF labels). */
    external_scores: z
      .strictObject({
        enabled: z.boolean().default(false),
        sources: z.array(externalSource).default([]),
      })
      .superRefine((e, ctx) => {
        const seen = new Set<string>();
        e.sources.forEach((src, i) => {
          if (seen.has(src.name)) {
            ctx.addIssue({
              code: "custom",
              message: `duplicate source name ${src.name}`,
              path: ["sources", i, "name"],
            });
          }
          seen.add(src.name);
        });
      })
      .prefault({}),
    scoring_webhook: scoringWebhook.prefault({}),
  })
  .prefault({});

/** The CAPTCHA providers riskgate can verify, each with its documented siteverify URL. */
export const CAPTCHA_PROVIDERS = ["turnstile", "hcaptcha", "recaptcha"] as const;

/**
 * Browser challenges (style `interactive`): a page riskgate serves that a person passes, and
 * the clearance cookie a pass sets. See the README's "Browser challenges" section.
 */
const interactive = z
  .strictObject({
    /** `pow`: a proof-of-work page (no third party); or a CAPTCHA provider's widget. */
    mechanism: z.enum(["pow", ...CAPTCHA_PROVIDERS]).default("pow"),
    /** How long an issued challenge may be answered. */
    ttl_seconds: z.number().int().min(10).max(3600).default(300),
    pow: z
      .strictObject({
        /**
         * Leading zero bits of SHA-256 asked at score 0 and at score 100 (linear between).
         * Anubis asks 16 bits (4 hex zeros) by default; 12-18 keeps a phone under a few seconds.
         */
        min_bits: z.number().int().min(1).max(32).default(12),
        max_bits: z.number().int().min(1).max(32).default(18),
      })
      .refine((p) => p.min_bits <= p.max_bits, {
        message: "min_bits must not be above max_bits",
      })
      .prefault({}),
    captcha: z
      .strictObject({
        /** The provider's public site key, put in the page's widget. */
        site_key: z.string().default(""),
        /** siteverify URL; unset: the provider's documented one. Tests point it at a local server. */
        verify_url: z.url().optional(),
        /** Time budget of one siteverify call; past it the route's failure mode decides. */
        timeout_ms: z.number().int().positive().max(10_000).default(2000),
        /** Consecutive siteverify failures that open the breaker. */
        breaker_failures: z.number().int().positive().default(5),
        /** How long an open breaker answers "unavailable" before one call tries again. */
        breaker_open_seconds: z.number().int().positive().default(30),
      })
      .prefault({}),
    clearance: z
      .strictObject({
        cookie: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, "use letters, digits, _ -")
          .default("riskgate_clearance"),
        /** Lifetime of a clearance (Cloudflare's Challenge Passage defaults to 30 minutes). */
        ttl_seconds: z.number().int().min(60).max(86_400).default(1800),
        /** Points a valid clearance takes off the score (a reason with negative points). */
        points: z.number().int().min(0).max(100).default(30),
        /** A valid clearance also clears sticky risk (`risk.sticky`) for its lifetime. */
        clears_sticky: z.boolean().default(true),
        /** Set the cookie with `Secure` (HTTPS only); turn off only for plain-HTTP tests. */
        secure: z.boolean().default(true),
      })
      .prefault({}),
  })
  .refine((i) => i.mechanism === "pow" || i.captcha.site_key !== "", {
    message: "a CAPTCHA mechanism needs captcha.site_key",
    path: ["captcha", "site_key"],
  })
  .prefault({});

const decisions = z
  .strictObject({
    challenge: z
      .strictObject({
        /** `interactive` applies to browser requests; others get `step_up`. */
        style: challengeStyle.default("step_up"),
        /** Default acr_values for a step-up when the route names none. */
        acr_values: z.string().default("mfa"),
        max_age_seconds: seconds.optional(),
        /** Upstream header carrying the challenge when style is `header`. */
        header: z.string().toLowerCase().default("x-riskgate-challenge"),
        interactive,
      })
      .prefault({}),
    /** Prefix of the headers riskgate adds upstream; inbound headers with it are removed. */
    header_prefix: z
      .string()
      .regex(/^x-[a-z0-9-]+-$/, "must look like x-name-")
      .default("x-riskgate-"),
    /** Also remove these inbound headers (e.g. identity headers upstreams trust). */
    strip_headers: z.array(z.string().min(1).toLowerCase()).default([]),
    /** Emit the subject header upstream. */
    subject_header: z.boolean().default(true),
  })
  .prefault({});

/**
 * One rule of the `rules:` table: conditions over the signals' findings and the request's
 * facts (all set conditions must hold; an empty `when` matches every request) and the outcome
 * it forces. Rules run in order after license and hard blocks; the first enforcing match wins.
 */
const ruleWhen = z
  .strictObject({
    /** Any of these reason codes fired. */
    reasons_any: z.array(z.string().min(1)).optional(),
    /** All of these reason codes fired. */
    reasons_all: z.array(z.string().min(1)).optional(),
    /** None of these reason codes fired (e.g. `ip.allowlisted` to let an allow list win). */
    reasons_none: z.array(z.string().min(1)).optional(),
    /** The summed score (0..100) is at least this. */
    score_at_least: points.optional(),
    /** The route rule's name is one of these. */
    routes: z.array(z.string().min(1)).optional(),
    sensitivity: z.array(sensitivity).optional(),
    /** HTTP methods, upper case. */
    methods: z.array(z.string().min(1).toUpperCase()).optional(),
    /** The caller's (licensed) tier is one of these. */
    tiers: z.array(z.string().min(1)).optional(),
    /** The client IP is on one of these list files (same format as ip_reputation lists). */
    ip_lists: z.array(z.string().min(1)).optional(),
    /** The client IP's country (ISO 3166-1 alpha-2) is one of these. */
    countries: z.array(z.string().length(2).toUpperCase()).optional(),
    /** The caller is (true) or is not (false) anonymous. */
    anonymous: z.boolean().optional(),
    /** The token's amr lacks every one of these methods (e.g. ["mfa", "otp", "hwk"]). */
    amr_lacks: z.array(z.string().min(1)).optional(),
    /** The token's acr is one of these. */
    acr: z.array(z.string().min(1)).optional(),
    /** The request's client class (signals.client_class) is one of these. */
    client_class: z.array(z.enum(["browser", "machine", "unknown"])).optional(),
  })
  .prefault({});

const rule = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, "use letters, digits, _ -"),
    when: ruleWhen,
    action: z.enum(["allow", "challenge", "throttle", "deny"]),
    /** Retry-After of a `throttle` action. */
    retry_after_seconds: seconds.min(1).default(60),
    /** `shadow`: the match is logged as a 0-point reason and the decision goes on as if it had not matched. */
    mode: mode.default("enforce"),
  })
  .refine((r) => r.action === "throttle" || r.retry_after_seconds === 60, {
    message: "retry_after_seconds applies to action throttle only",
    path: ["retry_after_seconds"],
  });

const rules = z
  .array(rule)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((r, i) => {
      if (seen.has(r.name)) {
        ctx.addIssue({
          code: "custom",
          message: `duplicate rule name ${r.name}`,
          path: [i, "name"],
        });
      }
      seen.add(r.name);
    });
  });

export const policySchema = z
  .strictObject({
    version: z.literal(1),
    mode: mode.default("enforce"),
    identity,
    tiers: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, "use letters, digits, _ -"), tier)
      .refine((t) => Object.keys(t).length > 0, { message: "define at least one tier" }),
    /** Tier given to anonymous callers on `auth: optional` routes (must exist in tiers when used). */
    anonymous_tier: z.string().min(1).optional(),
    routes: z.array(route).default([]),
    /**
     * Paths whose meaning depends on the upstream (escaped slashes, backslashes, `;` parameters,
     * double or overlong encoding, a raw `#`): `deny` refuses them (request.ambiguous_path);
     * `as_envoy` decides them on the path as Envoy's `normalize_path` passes them.
     */
    ambiguous_paths: z.enum(["deny", "as_envoy"]).default("deny"),
    /** What happens when no route matches. */
    default_route: z
      .strictObject({
        action: z.enum(["deny", "authenticate"]).default("deny"),
        sensitivity: sensitivity.default("medium"),
      })
      .prefault({}),
    signals,
    /** Ordered rules that force an outcome (see the README's Rules section). */
    rules,
    decisions,
    failure: z
      .strictObject({
        mode: failureMode.default("closed"),
        /** The whole decision's time budget; past it the failure mode decides. */
        budget_ms: z.number().int().positive().max(10_000).default(100),
        /** Outcome of an unexpected internal error. */
        on_internal_error: z.enum(["deny", "allow"]).default("deny"),
      })
      .prefault({}),
  })
  .superRefine((doc, ctx) => {
    checkRuleReasons(doc, ctx);
    const webhook = doc.signals.scoring_webhook;
    if (webhook.enabled && webhook.timeout_ms >= doc.failure.budget_ms) {
      ctx.addIssue({
        code: "custom",
        message: `timeout_ms must be below failure.budget_ms (${doc.failure.budget_ms})`,
        path: ["signals", "scoring_webhook", "timeout_ms"],
      });
    }
  })
  .transform((doc) => {
    // a header an external source reads is the front proxy's word to riskgate, not the
    // upstream's: it is removed upstream like `strip_headers`, so a forged one goes no further
    const names = doc.signals.external_scores.sources.flatMap((s) => s.header ?? []);
    const missing = names.filter((n) => !doc.decisions.strip_headers.includes(n));
    if (missing.length === 0) return doc;
    const strip_headers = [...doc.decisions.strip_headers, ...missing];
    return { ...doc, decisions: { ...doc.decisions, strip_headers } };
  });

/**
 * A rule's `reasons_*` codes must be ones riskgate can fire: a misspelt code would never match
 * and silently turn the rule into a no-op (or, in `reasons_none`, into a rule that always
 * holds). Registered codes, and `external.<name>` for the names this policy's external sources
 * and scoring webhook produce.
 */
function checkRuleReasons(
  doc: {
    signals: {
      external_scores: { sources: readonly z.output<typeof externalSource>[] };
      scoring_webhook: { bands: readonly { reason?: string | undefined }[] };
    };
    rules: readonly { when: Record<string, unknown> }[];
  },
  ctx: z.RefinementCtx,
): void {
  const external = new Set<string>(["webhook"]);
  for (const src of doc.signals.external_scores.sources) {
    external.add(src.name);
    for (const m of [...(src.number?.bands ?? []), ...Object.values(src.labels ?? {})]) {
      if (m.reason !== undefined) external.add(m.reason);
    }
  }
  for (const band of doc.signals.scoring_webhook.bands) {
    if (band.reason !== undefined) external.add(band.reason);
  }
  const known = (code: string) =>
    code.startsWith("external.")
      ? external.has(code.slice("external.".length))
      : !code.includes("<") && Object.hasOwn(REASONS, code);
  doc.rules.forEach((rule, i) => {
    for (const key of ["reasons_any", "reasons_all", "reasons_none"] as const) {
      const codes = rule.when[key] as readonly string[] | undefined;
      codes?.forEach((code, j) => {
        if (known(code)) return;
        ctx.addIssue({
          code: "custom",
          message: code.startsWith("external.")
            ? `no external source or webhook band of this policy produces ${code}`
            : `unknown reason code ${code} (see the README's reason codes)`,
          path: ["rules", i, "when", key, j],
        });
      });
    }
  });
}

/** The policy as written (before defaults). */
export type PolicyInput = z.input<typeof policySchema>;
/** The validated, defaulted policy. */
export type PolicyDocument = z.output<typeof policySchema>;
export type TierPolicy = PolicyDocument["tiers"][string];
export type RoutePolicy = PolicyDocument["routes"][number];
export type FailureMode = z.output<typeof failureMode>;
export type Sensitivity = z.output<typeof sensitivity>;
export type Mode = z.output<typeof mode>;
export type ChallengeStyle = z.output<typeof challengeStyle>;
export type InteractivePolicy = PolicyDocument["decisions"]["challenge"]["interactive"];

/**
 * Route patterns use RE2 syntax, matched in linear time: a backtracking pattern such as
 * `(a+)+` cannot stall the event loop. RE2 has no backreferences or lookaround.
 */
function checkRe2(source: string, ctx: z.RefinementCtx): void {
  try {
    RE2JS.compile(source);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^error parsing regexp: /, "") : "";
    ctx.addIssue({ code: "custom", message: `not a valid RE2 regular expression: ${why}` });
  }
}
export type RulePolicy = PolicyDocument["rules"][number];
export type RuleCondition = RulePolicy["when"];
