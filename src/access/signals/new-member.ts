import type { PolicyDocument } from "../../config/policy-schema.js";
import type { MemberReading } from "../../state/store.js";
import type { ReasonCode } from "../reasons.js";
import { NOTHING, type Signal, type SignalContext, tags } from "./signal.js";

type Sections = PolicyDocument["signals"];

/** The signal sections a bounded-set signal can read: on/off and how long members are kept. */
type SetSection = {
  [S in keyof Sections]: Sections[S] extends { enabled: boolean; remember_seconds: number }
    ? S
    : never;
}[keyof Sections];

/** The keys of a section that hold numbers. */
type NumberKey<C> = { [K in keyof C]: C[K] extends number ? K : never }[keyof C];

/** One "joins a bounded set" signal, as its policy section names its settings. */
export interface NewMemberSpec<S extends SetSection> {
  readonly code: ReasonCode;
  /** Store key name of the subject's set. */
  readonly set: string;
  /** Its section of the policy's `signals`. */
  readonly section: S;
  /** The section's key of the most members kept (the stalest is dropped past it). */
  readonly max: NumberKey<Sections[S]>;
  /** The section's key of the points a new member adds. */
  readonly points: NumberKey<Sections[S]>;
  /** This request's member; none (undefined or "") turns the signal off for it. */
  readonly member: (ctx: SignalContext) => string | undefined;
  /** Name the member in the reason's detail. */
  readonly detail?: boolean;
}

/**
 * A value (device id, country) joins the subject's bounded set of known values; a new one
 * scores, except the first, which is not a change. Only authenticated callers have a set.
 */
export function newMember<S extends SetSection>(spec: NewMemberSpec<S>): Signal {
  const { code, member } = spec;
  const section = (ctx: SignalContext): Sections[S] => ctx.policy.doc.signals[spec.section];
  return {
    name: code,
    enabled: (ctx) => section(ctx).enabled && !ctx.caller.anonymous && !!member(ctx),
    ops(ctx) {
      const cfg = section(ctx);
      return [
        {
          op: "member",
          key: { tag: tags.subject(ctx), name: spec.set },
          member: member(ctx) ?? "",
          ttlMs: cfg.remember_seconds * 1000,
          max: cfg[spec.max] as number,
        },
      ];
    },
    evaluate(ctx, results) {
      const reading = results[0] as MemberReading | undefined;
      if (reading === undefined || !reading.isNew || reading.size <= 1) return NOTHING;
      const points = section(ctx)[spec.points] as number;
      return {
        reasons: [spec.detail ? { code, points, detail: member(ctx) ?? "" } : { code, points }],
      };
    },
  };
}
