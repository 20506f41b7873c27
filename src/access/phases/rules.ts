import type { RuleCondition, RulePolicy } from "../../config/policy-rules.js";
import type { Reason } from "../reasons.js";
import type { SignalContext } from "../signals/signal.js";
import { next, type Phase } from "./phase.js";
import type { Scored } from "./score.js";

/** What rules read: the request's signal context (facts) and what the signals found. */
export type RuleInput = Pick<
  SignalContext,
  "policy" | "req" | "caller" | "route" | "tierName" | "env" | "location" | "clientClass"
>;

/** The first enforcing rule that matched, and the shadow matches seen before it. */
export interface RuleMatch {
  readonly rule: RulePolicy;
  readonly reason: Reason;
}

export interface RulesResult {
  /** The first matching rule in `enforce` mode (undefined: scoring decides). */
  readonly hit?: RuleMatch;
  /** 0-point `rule.<name>` reasons of shadow rules that matched (before the hit). */
  readonly shadow: readonly Reason[];
}

/** The findings and what the `rules:` table made of them. */
export interface Ruled extends Scored {
  readonly ruled: RulesResult;
}

/** Rules: the policy's `rules:` table over the findings and the request's facts. */
export const rules: Phase<Scored, Ruled> = {
  name: "rules",
  run(_check, scored) {
    const { ctx, reasons, score, throttle } = scored;
    return next({ ctx, reasons, score, throttle, ruled: evaluateRules(ctx, reasons, score) });
  },
};

const NO_RULES: RulesResult = Object.freeze({ shadow: Object.freeze([]) as readonly Reason[] });

/**
 * Runs the policy's `rules:` table in order. Each rule is a row: its `when` conditions (all must
 * hold) over the reasons fired, the score and the request's facts. The first enforcing match
 * wins; shadow rules that match only leave a 0-point reason.
 */
export function evaluateRules(
  input: RuleInput,
  reasons: readonly Reason[],
  score: number,
): RulesResult {
  const table = input.policy.doc.rules;
  if (table.length === 0) return NO_RULES;
  const fired = new Set<string>();
  for (const r of reasons) fired.add(r.code);
  const shadow: Reason[] = [];
  for (const rule of table) {
    if (!matches(rule.when, input, fired, score)) continue;
    const reason: Reason = {
      code: `rule.${rule.name}`,
      points: 0,
      detail: rule.mode === "shadow" ? `shadow: would ${rule.action}` : rule.action,
    };
    if (rule.mode === "shadow") {
      shadow.push(reason);
      continue;
    }
    return { hit: { rule, reason }, shadow };
  }
  return { shadow };
}

/** One row's conditions. Each condition is a predicate; unset conditions hold. */
const CONDITIONS: readonly ((
  when: RuleCondition,
  input: RuleInput,
  fired: ReadonlySet<string>,
  score: number,
) => boolean)[] = [
  (w, _i, fired) => w.reasons_any === undefined || w.reasons_any.some((c) => fired.has(c)),
  (w, _i, fired) => w.reasons_all === undefined || w.reasons_all.every((c) => fired.has(c)),
  (w, _i, fired) => w.reasons_none === undefined || !w.reasons_none.some((c) => fired.has(c)),
  (w, _i, _f, score) => w.score_at_least === undefined || score >= w.score_at_least,
  (w, i) => w.routes === undefined || w.routes.includes(i.route.name),
  (w, i) => w.sensitivity === undefined || w.sensitivity.includes(i.route.sensitivity),
  (w, i) => w.methods === undefined || w.methods.includes(i.req.method.toUpperCase()),
  (w, i) => w.tiers === undefined || w.tiers.includes(i.tierName),
  (w, i) =>
    w.ip_lists === undefined ||
    (i.req.clientIp !== "" &&
      w.ip_lists.some((f) => i.env.ipList(f)?.match(i.req.clientIp) !== undefined)),
  (w, i) => {
    if (w.countries === undefined) return true;
    const country = i.location()?.country;
    return country !== undefined && w.countries.includes(country);
  },
  (w, i) => w.anonymous === undefined || w.anonymous === i.caller.anonymous,
  (w, i) => w.amr_lacks === undefined || !w.amr_lacks.some((m) => i.caller.amr.includes(m)),
  (w, i) => w.acr === undefined || w.acr.includes(i.caller.acr),
  (w, i) => w.client_class === undefined || w.client_class.includes(i.clientClass),
];

function matches(
  when: RuleCondition,
  input: RuleInput,
  fired: ReadonlySet<string>,
  score: number,
): boolean {
  for (const holds of CONDITIONS) if (!holds(when, input, fired, score)) return false;
  return true;
}
