import { RE2JS } from "re2js";
import { z } from "zod";
import {
  challengeStyle,
  countryCode,
  failureMode,
  mode,
  seconds,
  sensitivity,
} from "./policy-fields.js";
import { apiKeyPlace, identity } from "./policy-identity.js";
import { checkRuleReasons, rules } from "./policy-rules.js";

/**
 * The policy file's schema, less its `signals` block: each signal describes its own section
 * (src/access/signals/), and {@link policySchemaWith} puts the two together. Every object is
 * strict (unknown keys are errors, so a typo never silently disables a rule) and every field
 * has a safe default. docs/reference/policy.md documents the same fields.
 */

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
  /**
   * The mesh peer (identity.mtls): `enough`: a mapped peer identifies the caller when no user
   * credential does; `with_token`: a mapped peer and a user credential are both required, and
   * the user is the caller (the mesh pattern); `off`: peers are never callers here.
   */
  peer: z.enum(["enough", "with_token", "off"]).default("enough"),
  /** Where this route reads API keys (identity.api_keys), over its `from`; [] reads none. */
  api_key: z.array(apiKeyPlace).optional(),
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

/** The CAPTCHA providers riskgate can verify, each with its documented siteverify URL. */
export const CAPTCHA_PROVIDERS = ["turnstile", "hcaptcha", "recaptcha"] as const;

/**
 * Browser challenges (style `interactive`): a page riskgate serves that a person passes, and
 * the clearance cookie a pass sets. See docs/browser-challenges.md.
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
    /**
     * A machine token cannot answer a challenge: where a person would be challenged it is
     * throttled with this Retry-After (and denied where the route asks for a recent login).
     */
    machine: z
      .strictObject({ retry_after_seconds: z.number().int().positive().default(60) })
      .prefault({}),
  })
  .prefault({});

const baseShape = {
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
};

const tailShape = {
  /** Ordered rules that force an outcome (see docs/writing-a-policy.md, "Rules"). */
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
};

/** The validated policy without its `signals` block: what the sections' checks may read. */
export type PolicyBase = z.output<z.ZodObject<typeof baseShape & typeof tailShape>>;

/** One problem a signal's section finds against the rest of the document. */
export interface SectionIssue {
  readonly message: string;
  /** From the document's root (`["signals", "scoring_webhook", "timeout_ms"]`). */
  readonly path: readonly (string | number)[];
}

/**
 * The `signals` block as the signal registry (src/access/signals/index.ts) builds it, and
 * what the rest of the schema asks of it. The schema knows no signal by name.
 */
export interface SignalsBlock<S extends z.ZodType> {
  readonly schema: S;
  /** Reason codes a verdict can carry (literal ones: no `rule.<name>` placeholders). */
  readonly reasonCodes: ReadonlySet<string>;
  /** The `<name>` of every `external.<name>` code this policy's signals can produce. */
  externalNames(signals: z.output<S>): Iterable<string>;
  /** Problems between a section and the rest of the document (a timeout over the budget). */
  check(signals: z.output<S>, doc: PolicyBase): readonly SectionIssue[];
  /** Inbound headers the signals read that an upstream must not see (stripped like `strip_headers`). */
  upstreamHeaders(signals: z.output<S>): readonly string[];
}

/** The whole policy schema: the base document with the registry's `signals` block. */
export function policySchemaWith<S extends z.ZodType>(block: SignalsBlock<S>) {
  // the document's type is only known once S is: read its block through the one key it has
  const signalsOf = (doc: object) => (doc as { readonly signals: z.output<S> }).signals;
  return z
    .strictObject({ ...baseShape, signals: block.schema, ...tailShape })
    .superRefine((doc, ctx) => {
      const signals = signalsOf(doc);
      checkRuleReasons(doc.rules, block.reasonCodes, new Set(block.externalNames(signals)), ctx);
      for (const issue of block.check(signals, doc)) {
        ctx.addIssue({ code: "custom", message: issue.message, path: [...issue.path] });
      }
    })
    .transform((doc) => {
      // a header a signal reads is the front proxy's word to riskgate, not the upstream's: it
      // is removed upstream like `strip_headers`, so a forged one goes no further
      const names = block.upstreamHeaders(signalsOf(doc));
      const missing = names.filter((n) => !doc.decisions.strip_headers.includes(n));
      if (missing.length === 0) return doc;
      const strip_headers = [...doc.decisions.strip_headers, ...missing];
      return { ...doc, decisions: { ...doc.decisions, strip_headers } };
    });
}

/** A policy schema as {@link policySchemaWith} builds it, whatever its signals block. */
export type PolicySchema<S extends z.ZodType = z.ZodType> = ReturnType<typeof policySchemaWith<S>>;
export type TierPolicy = z.output<typeof tier>;
export type RoutePolicy = z.output<typeof route>;
export type InteractivePolicy = z.output<typeof interactive>;
export type { ChallengeStyle, FailureMode, Mode, Sensitivity } from "./policy-fields.js";

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
