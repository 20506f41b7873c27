import { z } from "zod";
import { points, sensitivity } from "../../config/policy-fields.js";
import type {
  BaselineOp,
  BaselineReading,
  OpResult,
  StoreKey,
  StoreOp,
  SwapReading,
  WindowReading,
} from "../../state/store.js";
import type { Reason } from "../reasons.js";
import {
  NOTHING,
  type Outcome,
  type Signal,
  type SignalContext,
  type SignalFinding,
  section,
  tags,
} from "./signal.js";
import {
  dayAndHour,
  daysBefore,
  formatWorkHours,
  hoursBefore,
  learnHour,
  parseWorkHours,
  type WorkHours,
  worksAt,
} from "./work-hours.js";

const DAY_MS = 86_400_000;

const baselineSection = section(
  "sensitive_baseline",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Route sensitivities whose requests count as the person's sensitive volume. */
      sensitivities: z.array(sensitivity).min(1).default(["medium", "high"]),
      /** Days of trusted history before a person is judged against their own baseline. */
      min_days: z.number().int().positive().default(3),
      /** Usual daily volume never taken as lower than this (a person who rarely exports). */
      min_daily: z.number().int().positive().default(5),
      /** EWMA weight of the newest day in the daily volume. */
      alpha: z.number().gt(0).lt(1).default(0.2),
      /** The window an export run at hours never worked is counted over. */
      run_seconds: z.number().int().positive().default(3600),
      /** Such a run above this share of the usual day: `points` (a step-up). */
      run_share: z.number().positive().default(0.5),
      /** ... and above this many requests (a few admin clicks at a new hour are not a run). */
      min_run: z.number().int().positive().default(8),
      /** ... above this share (and twice the step-up line): denied, whatever a step-up proves. */
      deny_share: z.number().positive().default(1),
      /** The last 24 hours above this multiple of the usual day: `volume_points`. */
      volume_multiple: z.number().gt(1).default(3),
      points: points.default(45),
      volume_points: points.default(10),
      /** The hour alone (0: silent; travellers and late evenings are common). */
      hour_points: points.default(0),
      /** How long the hours and daily volume are remembered without a trusted request. */
      remember_seconds: z
        .number()
        .int()
        .positive()
        .default(60 * 86400),
    })
    .prefault({}),
);

const REASONS = {
  "sensitive.off_hours_volume":
    "At hours the person never works, a run of sensitive requests above a share of their (and their org's) usual day; a deny above deny_share.",
  "sensitive.volume":
    "Sensitive-route volume in the last 24 hours far above the person's (and org's) usual day.",
  "sensitive.off_hours":
    "A sensitive route at an hour of the day the person (or, for a new person, the org) never works.",
} as const;

type Cfg = z.output<typeof baselineSection.schema>;

const key = (tag: string, name: string): StoreKey => ({ tag, name: `sens:${name}` });
/** Volumes are per route: a run of exports is judged against the usual exports, not writes. */
const routeKey = (ctx: SignalContext, tag: string, name: string): StoreKey =>
  key(tag, `${name}:${ctx.route.name}`);
const cfgOf = (ctx: SignalContext): Cfg => ctx.policy.doc.signals.sensitive_baseline;
const isSensitive = (ctx: SignalContext) =>
  cfgOf(ctx).sensitivities.includes(ctx.route.sensitivity);

/** Aligned with the ops below: the person's hours first, then (sensitive routes) the volumes. */
const AT = { hours: 0, person: 1, recent: 2, run: 3, org: 4, people: 5, orgHours: 6 } as const;

const recentOp = (ctx: SignalContext, cost: number): StoreOp => ({
  op: "window",
  key: routeKey(ctx, tags.subject(ctx), "24h"),
  windowMs: DAY_MS,
  cost,
});
const runOp = (ctx: SignalContext, cost: number): StoreOp => ({
  op: "window",
  key: routeKey(ctx, tags.subject(ctx), "run"),
  windowMs: cfgOf(ctx).run_seconds * 1000,
  cost,
});

function ops(ctx: SignalContext): StoreOp[] {
  const subject = tags.subject(ctx);
  const hours: StoreOp = { op: "get", key: key(subject, "hours") };
  if (!isSensitive(ctx)) return [hours];
  const org = tags.org(ctx);
  return [
    hours,
    dailyOp(ctx, routeKey(ctx, subject, "daily"), 0),
    recentOp(ctx, 0),
    runOp(ctx, 0),
    dailyOp(ctx, routeKey(ctx, org, "daily"), 0),
    dailyOp(ctx, routeKey(ctx, org, "people"), 0),
    { op: "get", key: key(org, "hours") },
  ];
}

function dailyOp(ctx: SignalContext, k: StoreKey, cost: number): BaselineOp {
  const cfg = cfgOf(ctx);
  return {
    op: "baseline",
    key: k,
    bucketMs: DAY_MS,
    alpha: cfg.alpha,
    ttlMs: cfg.remember_seconds * 1000,
    cost,
  };
}

/** What the readings say about this request (undefined: not enough history to judge). */
interface Judgement {
  /** Sensitive requests served in the last 24 hours, this one included. */
  readonly recent: number;
  /** Sensitive requests served at hours never worked within `run_seconds`, this one included. */
  readonly run: number;
  /** The usual day the volume is judged against. */
  readonly usual: number;
  readonly offHours: boolean;
  readonly hour: number;
}

function judge(ctx: SignalContext, results: readonly OpResult<StoreOp>[]): Judgement | undefined {
  const cfg = cfgOf(ctx);
  const [person, recent, run, org, people] = [AT.person, AT.recent, AT.run, AT.org, AT.people].map(
    (i) => results[i],
  ) as (BaselineReading & WindowReading)[];
  if (person === undefined || recent === undefined || run === undefined) return undefined;
  if (org === undefined || people === undefined) return undefined;
  const known = person.samples >= cfg.min_days;
  const orgUsual =
    org.samples >= cfg.min_days && people.mean > 0 ? org.mean / people.mean : undefined;
  if (!known && orgUsual === undefined) return undefined;
  const usual = Math.max(known ? person.mean : 0, orgUsual ?? 0, cfg.min_daily);
  const { day, hour } = dayAndHour(ctx.now);
  const mask = workedHours(cfg, day, hoursRead(results, AT.hours), hoursRead(results, AT.orgHours));
  const offHours = mask !== 0 && !worksAt(mask, hour);
  return { recent: recent.count + 1, run: offHours ? run.count + 1 : 0, usual, offHours, hour };
}

/** The person's usual hours once they have `min_days` days of them, else the org's. */
function workedHours(cfg: Cfg, day: number, person: WorkHours, org: WorkHours): number {
  if (daysBefore(person, day) >= cfg.min_days) return hoursBefore(person, day);
  return daysBefore(org, day) >= cfg.min_days ? hoursBefore(org, day) : 0;
}

const hoursRead = (results: readonly OpResult<StoreOp>[], i: number): WorkHours =>
  parseWorkHours((results[i] as SwapReading | undefined)?.previous);

function finding(cfg: Cfg, j: Judgement): SignalFinding {
  const hour = j.offHours ? `, at ${j.hour}h UTC, never worked: ${j.run} in the run` : "";
  const detail = `${j.recent} in 24h vs usual day ${j.usual.toFixed(1)}${hour}`;
  const reason = (code: keyof typeof REASONS, pts: number): Reason => ({
    code,
    points: pts,
    detail,
  });
  if (j.run > denyLine(cfg, j)) {
    const r = reason("sensitive.off_hours_volume", cfg.points);
    return { reasons: [r], block: r };
  }
  if (j.run > runLine(cfg, j)) {
    return { reasons: [reason("sensitive.off_hours_volume", cfg.points)] };
  }
  if (j.recent > cfg.volume_multiple * j.usual) {
    return { reasons: [reason("sensitive.volume", cfg.volume_points)] };
  }
  if (j.offHours && cfg.hour_points > 0) {
    return { reasons: [reason("sensitive.off_hours", cfg.hour_points)] };
  }
  return NOTHING;
}

/** A volume finding (not the hour alone): such a request teaches nothing. */
function strong(cfg: Cfg, j: Judgement | undefined): boolean {
  if (j === undefined) return false;
  return j.recent > cfg.volume_multiple * j.usual || j.run > runLine(cfg, j);
}

/** The run length past which an off-hours run steps up. */
const runLine = (cfg: Cfg, j: Judgement) => Math.max(cfg.run_share * j.usual, cfg.min_run);
/** ... and past which it is denied: never below twice the step-up line, so a step-up comes first. */
const denyLine = (cfg: Cfg, j: Judgement) =>
  Math.max(cfg.deny_share * j.usual, 2 * runLine(cfg, j));

/**
 * The writes after a verdict. The last 24 hours and the run count every served sensitive
 * request (what left through the upstream, findings or not, so a run a passed step-up lets
 * through still climbs to the deny); the usual day and the hours learn only from trusted
 * requests without a volume finding, so a refused or flagged run never becomes the usual day.
 */
function recordOps(
  ctx: SignalContext,
  outcome: Outcome,
  results: readonly OpResult<StoreOp>[],
): StoreOp[] {
  const cfg = cfgOf(ctx);
  const writes: StoreOp[] = [];
  const sensitive = isSensitive(ctx) && results.length > AT.orgHours;
  const subject = tags.subject(ctx);
  const j = sensitive ? judge(ctx, results) : undefined;
  if (sensitive && outcome.served) {
    writes.push(recentOp(ctx, 1));
    if (j?.offHours === true) writes.push(runOp(ctx, 1));
  }
  if (!outcome.trusted || strong(cfg, j)) return writes;
  const ttlMs = cfg.remember_seconds * 1000;
  const hourWrite = (k: StoreKey, at: number) => {
    const before = hoursRead(results, at);
    const after = learnHour(before, ctx.now);
    if (after !== before) writes.push({ op: "swap", key: k, value: formatWorkHours(after), ttlMs });
  };
  hourWrite(key(subject, "hours"), AT.hours);
  if (!sensitive) return writes;
  const org = tags.org(ctx);
  writes.push(
    dailyOp(ctx, routeKey(ctx, subject, "daily"), 1),
    dailyOp(ctx, routeKey(ctx, org, "daily"), 1),
  );
  // the org's people-days: a person's first trusted request of the day on the route counts them
  if ((results[AT.person] as BaselineReading).current === 0) {
    writes.push(dailyOp(ctx, routeKey(ctx, org, "people"), 1));
  }
  hourWrite(key(org, "hours"), AT.orgHours);
  return writes;
}

/**
 * Sensitive-route baseline per person: the person's daily volume on each sensitive route (an
 * EWMA of trusted requests per UTC day) and the hours of the day they work, both learned only from
 * trusted requests. A person with fewer than `min_days` days of history is judged against the
 * org's usual day per person and the org's hours. An export run at hours never worked, holding
 * within `run_seconds` a large share of the usual day, is the insider's pattern: strong enough
 * to step up, and past `deny_share` a deny. A traveller or a late evening works at new hours
 * at the usual pace, and stays under it. The deny is deliberate: the insider holds their own MFA, so a passed
 * step-up proves nothing about intent. Volume alone or the hour alone score a little.
 * `usage.anomaly` sees a burst per minute; this sees a day's work done at night.
 */
export const sensitiveBaseline: Signal<typeof REASONS, typeof baselineSection> = {
  name: "sensitive.baseline",
  reasons: REASONS,
  policy: baselineSection,
  // a passed step-up proves the person, not the purpose: the night's export stays a finding
  beyondStepUp: ["sensitive.off_hours_volume"],
  enabled: (ctx) =>
    cfgOf(ctx).enabled &&
    !ctx.caller.anonymous &&
    ctx.caller.org !== "" &&
    ctx.clientClass !== "machine",
  ops,
  evaluate(ctx, results) {
    if (!isSensitive(ctx)) return NOTHING;
    const j = judge(ctx, results);
    return j === undefined ? NOTHING : finding(cfgOf(ctx), j);
  },
  record: (ctx, outcome, results) =>
    results !== undefined && results.length > 0 ? recordOps(ctx, outcome, results) : [],
};
