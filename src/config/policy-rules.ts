import { z } from "zod";
import { mode, points, seconds, sensitivity } from "./policy-fields.js";

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

export const rules = z
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

/**
 * A rule's `reasons_*` codes must be ones riskgate can fire: a misspelt code would never match
 * and silently turn the rule into a no-op (or, in `reasons_none`, into a rule that always
 * holds). Registered codes, and `external.<name>` for the names this policy's signals produce.
 */
export function checkRuleReasons(
  list: readonly { when: Record<string, unknown> }[],
  registered: ReadonlySet<string>,
  external: ReadonlySet<string>,
  ctx: z.RefinementCtx,
): void {
  const known = (code: string) =>
    code.startsWith("external.")
      ? external.has(code.slice("external.".length))
      : registered.has(code);
  list.forEach((rule, i) => {
    for (const key of ["reasons_any", "reasons_all", "reasons_none"] as const) {
      const codes = rule.when[key] as readonly string[] | undefined;
      codes?.forEach((code, j) => {
        if (known(code)) return;
        ctx.addIssue({
          code: "custom",
          message: code.startsWith("external.")
            ? `no external source or webhook band of this policy produces ${code}`
            : `unknown reason code ${code} (see docs/reference/reason-codes.md)`,
          path: ["rules", i, "when", key, j],
        });
      });
    }
  });
}

export type RulePolicy = z.output<typeof rule>;
export type RuleCondition = RulePolicy["when"];
