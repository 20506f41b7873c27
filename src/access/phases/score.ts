import { failureLetsThrough, failureModeOf } from "../failure.js";
import type { Reason } from "../reasons.js";
import { scoreOf } from "../score.js";
import { webhookReasons } from "../signals/external-webhook.js";
import { NOTHING, type SignalContext } from "../signals/signal.js";
import type { DecisionContext } from "../verdict.js";
import type { Gathered } from "./gather.js";
import { type CheckRun, deny, type Ended, next, type Phase } from "./phase.js";

/** A throttle a signal asked for: it beats any score. */
export interface Throttle {
  readonly retryAfterSeconds: number;
  readonly reason: Reason;
}

/** The findings summed: the reasons that count, their score, and a signal's throttle. */
export interface Scored {
  readonly ctx: SignalContext;
  /** The reasons found (a throttle's reason last), less those a clearance cleared. */
  readonly reasons: readonly Reason[];
  readonly score: number;
  readonly throttle: Throttle | undefined;
}

/**
 * Score: each enabled signal evaluates what its ops read (a stateful signal sits out when the
 * store failed); a hard block ends the decision at once, before the scoring webhook's answer.
 * Otherwise the webhook's answer adds its reasons (or its failure, under the route's failure
 * mode), and the points are summed.
 */
export const score: Phase<Gathered, Scored> = {
  name: "score",
  run(check, gathered) {
    const { ctx, active } = gathered;
    const reasons: Reason[] = [...gathered.notes];
    let throttle: Throttle | undefined;
    let block: Reason | undefined;
    let clears: Set<string> | undefined;
    for (const { signal, ops, results } of active) {
      if (results === undefined) {
        // store down: stateful signals sit this one out
        check.trace?.signal?.(signal.name, ops, undefined, undefined);
        continue;
      }
      const finding = signal.evaluate(ctx, results);
      check.trace?.signal?.(signal.name, ops, results, finding);
      if (finding === NOTHING) continue;
      for (const r of finding.reasons) reasons.push(r);
      if (finding.observations !== undefined) check.timings.external = finding.observations;
      if (finding.throttle && throttle === undefined) throttle = finding.throttle;
      if (finding.block && block === undefined) block = finding.block;
      if (finding.clears !== undefined && finding.clears.length > 0) {
        clears ??= new Set();
        for (const code of finding.clears) clears.add(code);
      }
    }
    if (clears !== undefined) keepBeyondStepUp(clears, active);
    // what the verdict may write once it is known (the record phase)
    check.learned.signals = { ctx, active };
    if (block !== undefined) return deny({ ...gathered.who, reasons }, "risk", block);
    // a hard block did not wait for the webhook; anything else does (it ran beside the store)
    if (gathered.scoring === undefined) return next(summed(ctx, reasons, throttle, clears));
    return addWebhookReasons(check, gathered, gathered.scoring, reasons).then(
      (refused) => refused ?? summed(ctx, reasons, throttle, clears),
    );
  },
};

/** A passed step-up answers nothing a signal says is beyond it (`Signal.beyondStepUp`). */
function keepBeyondStepUp(clears: Set<string>, active: Gathered["active"]): void {
  for (const { signal } of active) {
    for (const code of signal.beyondStepUp ?? []) clears.delete(code);
  }
}

/** The reasons that count (a throttle's last, less those a passed step-up answered), and their score. */
function summed(
  ctx: SignalContext,
  found: readonly Reason[],
  throttle: Throttle | undefined,
  clears: ReadonlySet<string> | undefined,
): Scored {
  const answered = clears === undefined ? found : found.filter((r) => !clears.has(r.code));
  const kept = clearedOfSticky(ctx, answered);
  const reasons = throttle ? [...kept, throttle.reason] : kept;
  return { ctx, reasons, score: scoreOf(reasons), throttle };
}

/** The webhook's reasons added to `reasons`; a deny when it failed and the failure mode refuses. */
async function addWebhookReasons(
  check: CheckRun,
  gathered: Gathered,
  scoring: NonNullable<Gathered["scoring"]>,
  reasons: Reason[],
): Promise<Ended | undefined> {
  const { start, end, outcome } = await scoring;
  const ok = outcome.kind === "ok";
  check.timings.webhook = {
    start,
    end,
    outcome: !ok ? outcome.failure : outcome.cached ? "cached" : "ok",
  };
  const { policy } = check.snapshot;
  if (ok) {
    for (const r of webhookReasons(policy.doc.signals.scoring_webhook, outcome.answer)) {
      reasons.push(r);
    }
    return undefined;
  }
  const failure = failureModeOf(policy, gathered.ctx.tier, check.route);
  const reason: Reason = {
    code: "failure.webhook",
    points: 0,
    detail: `${outcome.failure}; ${failure}`,
  };
  if (failureLetsThrough(failure, check.req)) {
    reasons.push(reason);
    return undefined;
  }
  const who: DecisionContext = { ...gathered.who, reasons };
  return deny(who, "failure", reason);
}

/**
 * The findings, less `risk.sticky` when a valid clearance is among them and the policy lets a
 * passed challenge clear sticky risk (a person proved themselves since the refusal).
 */
function clearedOfSticky(ctx: SignalContext, found: readonly Reason[]): readonly Reason[] {
  if (!ctx.policy.doc.decisions.challenge.interactive.clearance.clears_sticky) return found;
  if (!found.some((r) => r.code === "challenge.cleared")) return found;
  if (!found.some((r) => r.code === "risk.sticky")) return found;
  return found.filter((r) => r.code !== "risk.sticky");
}
