import { z } from "zod";
import { clientClass, points } from "../../config/policy-fields.js";
import type { CountReading, StoreOp, WindowReading } from "../../state/store.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, tagOf, tags } from "./signal.js";

/** `signals.velocity.population` (a part of the velocity section, velocity.ts). */
export const populationSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Client classes measured against their own population. */
    classes: z.array(clientClass).default(["browser"]),
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
  .prefault({});

const REASONS = {
  "velocity.population":
    "The subject keeps many times the average pace of its client class's subjects (a new token scraping under the limit).",
} as const;

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
export const populationPace: Signal<typeof REASONS, undefined> = {
  name: "velocity.population",
  reasons: REASONS,
  keepsTrust: ["velocity.population"],
  // its first op reads the subject's velocity window as subject velocity left it
  after: ["velocity.subject"],
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

/**
 * The subject's own velocity window (every request it sends, refused ones too) as this signal
 * reads it: read after subject velocity counted this request into it (cost 0), or counted here
 * (cost 1) when subject velocity does not run for this caller (its tier has no per-subject
 * limit). One counter either way, never a second one of the same count. With a limit it is the
 * same exact window subject velocity keeps; without one, an estimate of its own.
 */
function subjectWindowOp(ctx: SignalContext): StoreOp {
  const limit = ctx.tier.limits?.requests_per_window;
  const windowMs = ctx.policy.doc.signals.velocity.window_seconds * 1000;
  const tag = tags.subject(ctx);
  return limit !== undefined
    ? { op: "window", key: { tag, name: "rate" }, windowMs, cost: 0, limit }
    : { op: "window", key: { tag, name: "vel" }, windowMs, cost: 1 };
}

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
