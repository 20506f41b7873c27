import type { CountReading, StoreOp, WindowReading } from "../../state/store.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, tagOf } from "./signal.js";
import { subjectWindowOp } from "./velocity.js";

/**
 * Pace against the population: the subject's requests in the velocity window against the
 * average pace of its client class (the class's trusted requests over `window_seconds`
 * divided by the distinct subjects of the class seen in it). A new token has no baseline of
 * its own (usage.anomaly needs `min_samples` buckets of it), but its class has one: a person's
 * session that keeps `multiple` times the pace of everyone else's is not a person reading
 * screens. Scraping paced just under the tier's published limit is blind to the limit and to
 * its own baseline, and not to this.
 *
 * The population counts only trusted requests (allowed, decided on the store's state), so a
 * scraper flagged by this signal stops feeding the average it is measured against. Off until
 * `min_subjects` subjects of the class were seen in the window (a quiet night has no
 * population to compare with). The class's keys are one hot key pair shared by every Check of
 * that class (docs/state.md); the distinct count saturates at MAX_DISTINCT, which can only
 * raise the average and so never flags more.
 */
export const populationPace: Signal = {
  name: "velocity.population",
  enabled(ctx) {
    const cfg = ctx.policy.doc.signals.velocity.population;
    return (
      ctx.policy.doc.signals.velocity.enabled &&
      cfg.enabled &&
      !ctx.caller.anonymous &&
      cfg.classes.includes(ctx.clientClass)
    );
  },
  // (enabled only with signals.velocity on, so subject velocity runs before it when the tier
  // has a per-subject limit, and subjectWindowOp reads its count)
  ops: (ctx) => [subjectWindowOp(ctx), classServed(ctx, 0), classSubjects(ctx)],
  record: (ctx, outcome) => (outcome.trusted ? [classServed(ctx, 1)] : NO_OPS),
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.velocity.population;
    const own = results[0] as WindowReading | undefined;
    const served = results[1] as WindowReading | undefined;
    const subjects = results[2] as CountReading | undefined;
    if (own === undefined || served === undefined || subjects === undefined) return NOTHING;
    if (subjects.count < cfg.min_subjects || own.count < cfg.min_requests) return NOTHING;
    const velocitySeconds = ctx.policy.doc.signals.velocity.window_seconds;
    // the class's average requests per subject, scaled to the velocity window
    const average = (served.count / subjects.count) * (velocitySeconds / cfg.window_seconds);
    if (own.count <= cfg.multiple * average) return NOTHING;
    return {
      reasons: [
        {
          code: "velocity.population",
          points: cfg.points,
          detail: `${Math.round(own.count)} per ${velocitySeconds}s vs ${ctx.clientClass} average ${average.toFixed(1)} over ${subjects.count} subjects`,
        },
      ],
    };
  },
};

/** The class's trusted requests: read before the verdict, counted after an allow. */
function classServed(ctx: SignalContext, cost: number): StoreOp {
  const windowMs = ctx.policy.doc.signals.velocity.population.window_seconds * 1000;
  const key = { tag: tagOf.population(ctx.clientClass), name: "served" };
  return { op: "window", key, windowMs, cost };
}

/** The class's distinct subjects in the window, this one included. */
function classSubjects(ctx: SignalContext): StoreOp {
  const windowMs = ctx.policy.doc.signals.velocity.population.window_seconds * 1000;
  const key = { tag: tagOf.population(ctx.clientClass), name: "subjects" };
  return { op: "distinct", key, member: ctx.caller.subject, windowMs };
}
