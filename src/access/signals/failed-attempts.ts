import type { StoreOp, WindowReading } from "../../state/store.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import type { Verdict } from "../verdict.js";
import { NOTHING, type Signal, tagOf, tags } from "./signal.js";

/** Store key name of the denial counters (per subject and per IP). */
const FAILED = "fail";

/**
 * Failed attempts: recent denials of this subject and from this IP, and how many distinct
 * subjects this IP presented, raise the score of the next request that gets this far
 * (credential stuffing and enumeration end in a valid login, and that login is the one to stop).
 * The counters are read here (cost 0) and bumped by {@link failureRecord} after a denial.
 */
export const failedAttempts: Signal = {
  name: "attempts",
  enabled: (ctx) => ctx.policy.doc.signals.failed_attempts.enabled && !ctx.caller.anonymous,
  ops(ctx) {
    const cfg = ctx.policy.doc.signals.failed_attempts;
    const windowMs = cfg.window_seconds * 1000;
    const ops: StoreOp[] = [
      { op: "window", key: { tag: tags.subject(ctx), name: FAILED }, windowMs, cost: 0 },
    ];
    if (ctx.req.clientIp !== "") {
      ops.push(
        { op: "window", key: { tag: tags.ip(ctx), name: FAILED }, windowMs, cost: 0 },
        {
          op: "distinct",
          key: { tag: tags.ip(ctx), name: "subjects" },
          member: ctx.caller.subject,
          windowMs,
        },
      );
    }
    return ops;
  },
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.failed_attempts;
    const reasons: Reason[] = [];
    const subject = results[0] as WindowReading | undefined;
    const ip = results[1] as WindowReading | undefined;
    const distinct = results[2] as { count: number } | undefined;
    if (subject !== undefined && subject.count >= cfg.subject_threshold) {
      reasons.push({
        code: "attempts.failed_subject",
        points: cfg.points,
        detail: `${subject.count} denials in ${cfg.window_seconds}s`,
      });
    }
    if (ip !== undefined && ip.count >= cfg.ip_threshold) {
      reasons.push({
        code: "attempts.failed_ip",
        points: cfg.points,
        detail: `${ip.count} denials in ${cfg.window_seconds}s`,
      });
    }
    if (distinct !== undefined && distinct.count >= cfg.distinct_subjects_per_ip) {
      reasons.push({
        code: "attempts.distinct_subjects_ip",
        points: cfg.distinct_subjects_points,
        detail: `${distinct.count} subjects in ${cfg.window_seconds}s`,
      });
    }
    return reasons.length === 0 ? NOTHING : { reasons };
  },
};

/**
 * The store ops that count one denial (authentication or license) against the IP and, when
 * known, the subject. Empty when the verdict is not such a denial.
 */
export function failureRecord(
  verdict: Verdict,
  req: AccessRequest,
  windowSeconds: number,
): StoreOp[] {
  if (
    verdict.kind !== "deny" ||
    (verdict.cause !== "authentication" && verdict.cause !== "license")
  ) {
    return [];
  }
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
  if (verdict.subject !== undefined && verdict.subject !== "") {
    ops.push({
      op: "window",
      key: { tag: tagOf.subject(verdict.subject), name: FAILED },
      windowMs,
      cost: 1,
    });
  }
  return ops;
}
