import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type {
  BaselineReading,
  MemberReading,
  OpResult,
  StoreOp,
  SwapReading,
  WindowReading,
} from "../../state/store.js";
import type { Reason } from "../reasons.js";
import { networkOf } from "./network.js";
import {
  NO_OPS,
  NOTHING,
  type Outcome,
  plainAllow,
  type Signal,
  type SignalContext,
  section,
  tags,
} from "./signal.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

const machineSection = section(
  "machine_baseline",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /** A network (/24, /48) and an ASN the machine was never trusted from. */
      egress_points: points.default(20),
      /** Requests in `window_seconds` far above the most its trusted history reached. */
      burst_points: points.default(25),
      window_seconds: z.number().int().positive().default(300),
      /** A burst is more than this many times its trusted peak... */
      burst_multiple: z.number().gt(1).default(4),
      /** ...and at least this many requests in the window. */
      burst_min_requests: z.number().int().positive().default(60),
      /** An hour of the day (UTC) it never ran at, once it has a day of history. */
      off_hours_points: points.default(10),
      /**
       * No finding until the machine was first seen this long ago (a new client is learning);
       * 0 judges it from its first trusted request on.
       */
      learn_seconds: z.number().int().nonnegative().default(3600),
      /** How long what a machine was trusted with (networks, ASNs, hours, peak) is remembered. */
      remember_seconds: z
        .number()
        .int()
        .positive()
        .default(30 * 86400),
      max_networks: z.number().int().positive().max(1000).default(64),
    })
    .prefault({}),
);

const REASONS = {
  "machine.new_egress":
    "A machine client calls from a network (/24, /48) and an ASN its trusted history never used.",
  "machine.burst":
    "A machine client's requests in the window are far above the most its trusted history reached.",
  "machine.off_hours":
    "A machine client runs at an hour of the day (UTC) its trusted history never ran at.",
} as const;

type MachinePolicy = z.output<typeof machineSection.schema>;

/** The op order: known network, known ASN, known hour, age, rate window, peak. */
const NETS = 0;
const ASNS = 1;
const HOURS = 2;
const AGE = 3;
const RATE = 4;
const PEAK = 5;

const key = (ctx: SignalContext, name: string) => ({ tag: tags.subject(ctx), name });
const asnOf = (ctx: SignalContext) => {
  const asn = ctx.location()?.asn;
  return asn === undefined ? "" : `AS${asn}`;
};
const hourOf = (now: number) => String(Math.floor(now / HOUR_MS) % 24);

/** The trusted peak and when it was last raised (`peak:ms`), or undefined. */
function peakOf(results: readonly OpResult<StoreOp>[]): { peak: number; at: number } | undefined {
  const text = (results[PEAK] as SwapReading | undefined)?.previous;
  if (text === null || text === undefined) return undefined;
  const [peak, at] = text.split(":").map(Number);
  return Number.isFinite(peak) && Number.isFinite(at)
    ? { peak: peak as number, at: at as number }
    : undefined;
}

/**
 * A machine judged against itself. A client-credentials token has no person to step up and no
 * device, and a library user agent and a cloud network describe every one of them; what tells
 * a stolen client secret from its owner is the machine's own habits. Per machine subject, from
 * its trusted history (allowed requests): its egress networks (/24, /48) and ASNs, the hours of
 * the day (UTC) it runs at, and its cadence (the most requests a `window_seconds` window of it
 * reached). A request from a network and an ASN it never used (`machine.new_egress`), a window
 * far above its peak (`machine.burst`) or, after a day, an hour it never ran at
 * (`machine.off_hours`) is a finding. A new machine is learning: no finding until it was first
 * seen `learn_seconds` ago and has a trusted network (no history, no finding).
 *
 * What teaches: an allowed request without a burst teaches its network, ASN and hour (a machine
 * cannot step up, so an allow, which a new egress or hour alone does not prevent, is how a
 * moved integration becomes known again); a burst teaches nothing. The peak rises from such a
 * request, at most doubling once a window after the learning hour, so a ramp cannot carry the
 * peak up with it.
 */
export const machineBaseline: Signal<typeof REASONS, typeof machineSection> = {
  name: "machine.baseline",
  reasons: REASONS,
  policy: machineSection,
  enabled: (ctx) =>
    ctx.policy.doc.signals.machine_baseline.enabled &&
    ctx.clientClass === "machine" &&
    !ctx.caller.anonymous &&
    networkOf(ctx.req.clientIp) !== undefined,
  ops(ctx) {
    const cfg = ctx.policy.doc.signals.machine_baseline;
    return [
      { op: "has", key: key(ctx, "mb:nets"), member: networkOf(ctx.req.clientIp) ?? "" },
      { op: "has", key: key(ctx, "mb:asns"), member: asnOf(ctx) },
      { op: "has", key: key(ctx, "mb:hours"), member: hourOf(ctx.now) },
      ageOp(ctx, cfg, 0),
      { op: "window", key: key(ctx, "mb:rate"), windowMs: cfg.window_seconds * 1000, cost: 1 },
      { op: "get", key: key(ctx, "mb:peak") },
    ];
  },
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.machine_baseline;
    const nets = results[NETS] as MemberReading | undefined;
    const age = results[AGE] as BaselineReading | undefined;
    if (nets === undefined || age === undefined || nets.size === 0) return NOTHING;
    if (learning(cfg, age)) return NOTHING;
    const reasons: Reason[] = [];
    const asns = results[ASNS] as MemberReading | undefined;
    const asn = asnOf(ctx);
    if (nets.isNew && (asn === "" || asns?.isNew !== false) && cfg.egress_points > 0) {
      const net = networkOf(ctx.req.clientIp) ?? "";
      const detail = asn === "" ? net : `${net} ${asn}`;
      reasons.push({ code: "machine.new_egress", points: cfg.egress_points, detail });
    }
    const count = (results[RATE] as WindowReading | undefined)?.count ?? 0;
    const peak = peakOf(results);
    if (
      peak !== undefined &&
      count >= cfg.burst_min_requests &&
      count > cfg.burst_multiple * peak.peak &&
      cfg.burst_points > 0
    ) {
      const detail = `${count} in ${cfg.window_seconds}s, trusted peak ${peak.peak}`;
      reasons.push({ code: "machine.burst", points: cfg.burst_points, detail });
    }
    const hours = results[HOURS] as MemberReading | undefined;
    if (hours?.isNew && hours.size > 0 && age.samples * HOUR_MS >= DAY_MS) {
      const detail = `${hourOf(ctx.now)}h UTC, runs at ${hours.size} hours`;
      if (cfg.off_hours_points > 0) {
        reasons.push({ code: "machine.off_hours", points: cfg.off_hours_points, detail });
      }
    }
    return reasons.length === 0 ? NOTHING : { reasons };
  },
  record(ctx, outcome, results = []) {
    if (!(outcome.trusted || onlyOwnFindings(outcome)) || burst(outcome)) return NO_OPS;
    const cfg = ctx.policy.doc.signals.machine_baseline;
    const ttlMs = cfg.remember_seconds * 1000;
    const ops: StoreOp[] = [
      member(ctx, "mb:nets", networkOf(ctx.req.clientIp) ?? "", ttlMs, cfg.max_networks),
      member(ctx, "mb:hours", hourOf(ctx.now), ttlMs, 24),
      ageOp(ctx, cfg, 1),
    ];
    const asn = asnOf(ctx);
    if (asn !== "") ops.push(member(ctx, "mb:asns", asn, ttlMs, cfg.max_networks));
    const raised = raisedPeak(ctx, cfg, results);
    if (raised !== undefined) {
      ops.push({ op: "swap", key: key(ctx, "mb:peak"), value: `${raised}:${ctx.now}`, ttlMs });
    }
    return ops;
  },
};

/**
 * An allow whose only open findings are a new egress or an hour off its schedule: a machine
 * cannot answer a step-up, so an allow that scored under every threshold with nothing else
 * against it teaches its own baseline (a moved integration stops being new), not the rest.
 */
function onlyOwnFindings(outcome: Outcome): boolean {
  const { enforced, open } = outcome;
  if (!plainAllow(enforced) || open.length === 0) return false;
  return open.every((code) => code === "machine.new_egress" || code === "machine.off_hours");
}

function burst(outcome: Outcome): boolean {
  return outcome.enforced.reasons.some((r) => r.code === "machine.burst");
}

/**
 * Still learning: first seen less than `learn_seconds` ago, counted in whole hours after the
 * hour it was first seen in (so at least that long, at most an hour more).
 */
function learning(cfg: MachinePolicy, age: BaselineReading | undefined): boolean {
  if (cfg.learn_seconds === 0) return false;
  return age === undefined || age.samples < Math.ceil(cfg.learn_seconds / 3600) + 1;
}

function member(ctx: SignalContext, name: string, value: string, ttlMs: number, max: number) {
  return { op: "member", key: key(ctx, name), member: value, ttlMs, max } as const;
}

/** Hourly buckets since the machine was first seen: `samples` is its age in hours. */
function ageOp(ctx: SignalContext, cfg: MachinePolicy, cost: number): StoreOp {
  return {
    op: "baseline",
    key: key(ctx, "mb:age"),
    bucketMs: HOUR_MS,
    alpha: 0.5,
    ttlMs: cfg.remember_seconds * 1000,
    cost,
  };
}

/**
 * The peak this trusted request sets, or undefined when it stays: the window's count when above
 * the peak; while learning, as it is; after, at most twice the peak and once a window.
 */
function raisedPeak(
  ctx: SignalContext,
  cfg: MachinePolicy,
  results: readonly OpResult<StoreOp>[],
): number | undefined {
  const count = (results[RATE] as WindowReading | undefined)?.count;
  if (count === undefined) return undefined;
  const peak = peakOf(results);
  if (peak === undefined) return count;
  if (count <= peak.peak) return undefined;
  if (learning(cfg, results[AGE] as BaselineReading | undefined)) return count;
  if (ctx.now - peak.at < cfg.window_seconds * 1000) return undefined;
  return Math.min(count, Math.max(2 * peak.peak, cfg.burst_min_requests));
}
