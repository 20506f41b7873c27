import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { StoreOp, WindowReading } from "../../state/store.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import type { Verdict } from "../verdict.js";
import { networkOf } from "./network.js";
import { tokenIdOf } from "./places.js";
import { NO_OPS, NOTHING, type Signal, section, tagOf, tags } from "./signal.js";

const attemptsSection = section(
  "failed_attempts",
  z
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
);

const REASONS = {
  "attempts.failed_subject": "Many recent denials for this subject (credential stuffing, probing).",
  "attempts.failed_ip": "Many recent denials from this client IP.",
  "attempts.distinct_subjects_ip":
    "Many distinct subjects from one client IP (credential stuffing, enumeration).",
  "attempts.distinct_subjects_network":
    "Many distinct subjects from one /24 or /48 network (distributed credential stuffing).",
  "attempts.distinct_subjects_asn":
    "Many distinct subjects from one ASN (credential stuffing spread over a provider's addresses).",
  "attempts.new_tokens_ip": "Many distinct tokens first seen from one client IP in the window.",
} as const;

/** Store key name of the denial counters (per subject and per IP). */
const FAILED = "fail";

/**
 * Failed attempts: recent denials of this subject and from this IP, and how many distinct
 * subjects this IP presented, raise the score of the next request that gets this far
 * (credential stuffing and enumeration end in a valid login, and that login is the one to stop).
 * The counters are read here (cost 0) and bumped by {@link failureRecord} after a denial, of
 * every request (`recordEvery`): a refusal before identity or license counts too.
 */
export const failedAttempts: Signal<typeof REASONS, typeof attemptsSection> = {
  name: "attempts",
  reasons: REASONS,
  policy: attemptsSection,
  recordEvery(policy, req, enforced) {
    const cfg = policy.doc.signals.failed_attempts;
    return cfg.enabled ? failureRecord(enforced, req, cfg) : NO_OPS;
  },
  enabled: (ctx) => ctx.policy.doc.signals.failed_attempts.enabled && !ctx.caller.anonymous,
  ops(ctx) {
    const cfg = ctx.policy.doc.signals.failed_attempts;
    const windowMs = cfg.window_seconds * 1000;
    const ops: StoreOp[] = [
      { op: "window", key: { tag: tags.subject(ctx), name: FAILED }, windowMs, cost: 0 },
    ];
    if (ctx.req.clientIp === "") return ops;
    const subject = ctx.caller.subject;
    ops.push(
      { op: "window", key: { tag: tags.ip(ctx), name: FAILED }, windowMs, cost: 0 },
      { op: "distinct", key: { tag: tags.ip(ctx), name: "subjects" }, member: subject, windowMs },
    );
    const network = networkOf(ctx.req.clientIp);
    if (cfg.distinct_subjects_per_network > 0 && network !== undefined) {
      const tag = tagOf.network(network);
      ops.push({ op: "distinct", key: { tag, name: "subjects" }, member: subject, windowMs });
    }
    const asn = ctx.location()?.asn;
    if (cfg.distinct_subjects_per_asn > 0 && asn !== undefined) {
      const tag = tagOf.network(`AS${asn}`);
      ops.push({ op: "distinct", key: { tag, name: "subjects" }, member: subject, windowMs });
    }
    if (cfg.distinct_tokens_per_ip > 0) {
      const member = tokenIdOf(ctx);
      ops.push({ op: "distinct", key: { tag: tags.ip(ctx), name: "tokens" }, member, windowMs });
    }
    return ops;
  },
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.failed_attempts;
    const reasons: Reason[] = [];
    const subject = results[0] as WindowReading | undefined;
    const ip = results[1] as WindowReading | undefined;
    const distinct = results[2] as { count: number } | undefined;
    const per = `in ${cfg.window_seconds}s`;
    if (subject !== undefined && subject.count >= cfg.subject_threshold) {
      reasons.push({
        code: "attempts.failed_subject",
        points: cfg.points,
        detail: `${subject.count} refusals ${per}`,
      });
    }
    if (ip !== undefined && ip.count >= cfg.ip_threshold) {
      reasons.push({
        code: "attempts.failed_ip",
        points: cfg.points,
        detail: `${ip.count} refusals ${per}`,
      });
    }
    if (distinct !== undefined && distinct.count >= cfg.distinct_subjects_per_ip) {
      reasons.push({
        code: "attempts.distinct_subjects_ip",
        points: cfg.distinct_subjects_points,
        detail: `${distinct.count} subjects ${per}`,
      });
    }
    // the optional readings follow in the order ops() pushed them
    let next = 3;
    const reading = (on: boolean) =>
      on ? ((results[next++] as { count: number } | undefined)?.count ?? 0) : 0;
    if (ctx.req.clientIp === "") return reasons.length === 0 ? NOTHING : { reasons };
    const network = networkOf(ctx.req.clientIp);
    const asn = ctx.location()?.asn;
    const perNetwork = reading(cfg.distinct_subjects_per_network > 0 && network !== undefined);
    const perAsn = reading(cfg.distinct_subjects_per_asn > 0 && asn !== undefined);
    const tokens = reading(cfg.distinct_tokens_per_ip > 0);
    if (cfg.distinct_subjects_per_network > 0 && perNetwork >= cfg.distinct_subjects_per_network) {
      reasons.push({
        code: "attempts.distinct_subjects_network",
        points: cfg.distinct_subjects_points,
        detail: `${perNetwork} subjects from ${network} ${per}`,
      });
    }
    if (cfg.distinct_subjects_per_asn > 0 && perAsn >= cfg.distinct_subjects_per_asn) {
      reasons.push({
        code: "attempts.distinct_subjects_asn",
        points: cfg.distinct_subjects_points,
        detail: `${perAsn} subjects from AS${asn} ${per}`,
      });
    }
    if (cfg.distinct_tokens_per_ip > 0 && tokens >= cfg.distinct_tokens_per_ip) {
      reasons.push({
        code: "attempts.new_tokens_ip",
        points: cfg.distinct_subjects_points,
        detail: `${tokens} tokens ${per}`,
      });
    }
    return reasons.length === 0 ? NOTHING : { reasons };
  },
};

/**
 * The store ops that count one refusal: an authentication or license denial against the IP
 * and, when known, the subject; with `count_risk_refusals` a risk denial or a challenge against
 * the IP too (a stuffer whose logins are valid is refused for risk, not for credentials).
 * A risk refusal is not counted against the subject: that would feed the subject's next score
 * with its own last refusal, a loop only a fresh authentication should break (sticky risk).
 * Nor is one that carries `risk.sticky`: while sticky, the subject's refusals are not new
 * evidence, and counting them would restart the loop through the IP's count.
 * Empty when the verdict is no such refusal.
 */
export function failureRecord(
  verdict: Verdict,
  req: AccessRequest,
  cfg: { readonly window_seconds: number; readonly count_risk_refusals: boolean },
): StoreOp[] {
  const credentials =
    verdict.kind === "deny" && (verdict.cause === "authentication" || verdict.cause === "license");
  // a risk refusal of a subject already at sticky risk repeats the evidence its first refusal
  // gave (that one was counted): counting it again would raise the IP's failures with the
  // stickiness's own refusals, which refuse again after the stickiness ends, and so on
  const risk =
    cfg.count_risk_refusals &&
    ((verdict.kind === "deny" && verdict.cause === "risk") || verdict.kind === "challenge") &&
    !verdict.reasons.some((r) => r.code === "risk.sticky");
  if (!credentials && !risk) return [];
  const windowSeconds = cfg.window_seconds;
  const windowMs = windowSeconds * 1000;
  const ops: StoreOp[] = [];
  if (req.clientIp !== "") {
    ops.push({
      op: "window",
      key: { tag: tagOf.ip(req.clientIp), name: FAILED },
      windowMs,
      cost: 1,
    });
  }
  if (credentials && verdict.subject !== undefined && verdict.subject !== "") {
    ops.push({
      op: "window",
      key: { tag: tagOf.subject(verdict.subject), name: FAILED },
      windowMs,
      cost: 1,
    });
  }
  return ops;
}
