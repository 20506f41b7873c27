import type { MemberReading } from "../../state/store.js";
import type { ReasonCode } from "../reasons.js";
import { NOTHING, type Signal, type SignalContext, tags } from "./signal.js";

/** What one "joins a bounded set" signal reads from the policy. */
interface SetLimits {
  readonly enabled: boolean;
  readonly rememberSeconds: number;
  /** Members kept per subject (the oldest is dropped past it). */
  readonly max: number;
  readonly points: number;
}

/**
 * A value (device id, country) joins the subject's bounded set of known values; a new one
 * scores, except the first, which is not a change. Only authenticated callers have a set.
 */
export function newMember(
  code: ReasonCode,
  setName: string,
  limits: (ctx: SignalContext) => SetLimits,
  member: (ctx: SignalContext) => string | undefined,
  options: { readonly detail?: boolean } = {},
): Signal {
  return {
    name: code,
    enabled: (ctx) => limits(ctx).enabled && !ctx.caller.anonymous && !!member(ctx),
    ops(ctx) {
      const cfg = limits(ctx);
      return [
        {
          op: "member",
          key: { tag: tags.subject(ctx), name: setName },
          member: member(ctx) ?? "",
          ttlMs: cfg.rememberSeconds * 1000,
          max: cfg.max,
        },
      ];
    },
    evaluate(ctx, results) {
      const reading = results[0] as MemberReading | undefined;
      if (reading === undefined || !reading.isNew || reading.size <= 1) return NOTHING;
      const points = limits(ctx).points;
      return {
        reasons: [options.detail ? { code, points, detail: member(ctx) ?? "" } : { code, points }],
      };
    },
  };
}
