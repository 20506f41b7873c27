import type { MemberReading } from "../../state/store.js";
import type { PolicyDocument } from "../policy.js";
import type { ReasonCode } from "../reasons.js";
import {
  NO_OPS,
  NOTHING,
  type ReasonTable,
  type Signal,
  type SignalContext,
  tags,
} from "./signal.js";

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
 * A value (device id, country) not in the subject's bounded set of known values scores, except
 * the first, which is not a change. The set is read before the verdict and only a trusted
 * (enforced allow) request adds its value to it, so a refused request never becomes the
 * subject's new normal. Only authenticated callers have a set.
 */
export function newMember<R extends ReasonTable, S extends SetSection>(
  reasons: R,
  spec: NewMemberSpec<S>,
): Signal<R, undefined> {
  const { code, member } = spec;
  const section = (ctx: SignalContext): Sections[S] => ctx.policy.doc.signals[spec.section];
  return {
    name: code,
    reasons,
    enabled: (ctx) => section(ctx).enabled && !ctx.caller.anonymous && !!member(ctx),
    ops: (ctx) => [
      { op: "has", key: { tag: tags.subject(ctx), name: spec.set }, member: member(ctx) ?? "" },
    ],
    record(ctx, outcome) {
      if (!outcome.trusted) return NO_OPS;
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
      // size is the set before this request: 0 means the first one seen, which is no news
      if (reading === undefined || !reading.isNew || reading.size === 0) return NOTHING;
      const points = section(ctx)[spec.points] as number;
      return {
        reasons: [spec.detail ? { code, points, detail: member(ctx) ?? "" } : { code, points }],
      };
    },
  };
}
