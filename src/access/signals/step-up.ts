import { z } from "zod";
import type { StoreOp, SwapReading } from "../../state/store.js";
import { clearanceBound } from "./clearance.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, section, tags } from "./signal.js";

const stepUpSection = section(
  "step_up",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * How long a challenge can be answered, and the session that answered it keeps the
       * answer (the findings it was for stay cleared), from the last challenge.
       */
      remember_seconds: z.number().int().positive().default(86400),
    })
    .prefault({}),
);

const REASONS = {
  "challenge.stepped_up":
    "The caller passed the step-up its last challenge asked for (a login after it with the acr/amr asked, or a valid clearance): the findings the challenge was for are cleared, and the request teaches the profile.",
} as const;

/** Store key name of the subject's last challenge: when, what it asked, what it was for. */
const CHALLENGED = "challenged";
/** The most finding codes one record keeps (a subject challenged for ever new reasons). */
const MAX_CODES = 16;

/** What a challenge asked of the subject, as stored. */
interface Challenged {
  /** When (ms since epoch). */
  readonly at: number;
  /** The RFC 9470 acr_values it asked for ("" when none). */
  readonly acr: string;
  /** The open findings it was for (reason codes). */
  readonly codes: readonly string[];
}

/**
 * A passed step-up ends the friction it answered. When a subject is challenged, the record
 * phase keeps what the challenge asked (its `acr_values`) and the open findings that caused it.
 * A later request passes it with a token whose `auth_time` is after the challenge and whose
 * `acr` or `amr` meets the `acr_values` asked (the policy's strong methods, `signals.weak_auth`,
 * when it asked none), or with a valid clearance bound to the subject (a passed browser
 * challenge). Such a request carries `challenge.stepped_up` (0 points): the findings the
 * challenge was for are dropped from its score (`clears`), and it teaches the profile even with
 * other findings on it (record.ts), so the place, device and network it was passed from become
 * known. A stolen session (its `auth_time` from before the challenge) can never pass it.
 *
 * Read before the verdict (`get`, in the deciding batch); written after a challenge (`swap`),
 * so the deciding path keeps its one round trip. Machine tokens are never challenged.
 */
export const stepUp: Signal<typeof REASONS, typeof stepUpSection> = {
  name: "challenge.step_up",
  reasons: REASONS,
  policy: stepUpSection,
  enabled: (ctx) =>
    ctx.policy.doc.signals.step_up.enabled &&
    !ctx.caller.anonymous &&
    ctx.clientClass !== "machine",
  ops: (ctx) => [{ op: "get", key: { tag: tags.subject(ctx), name: CHALLENGED } }],
  evaluate(ctx, results) {
    const last = parseChallenged((results[0] as SwapReading | undefined)?.previous ?? null);
    if (last === undefined) return NOTHING;
    const how = passedBy(ctx, last);
    if (how === undefined) return NOTHING;
    const detail = last.codes.length === 0 ? how : `${how}: ${last.codes.join(",")}`;
    return {
      reasons: [{ code: "challenge.stepped_up", points: 0, detail }],
      clears: last.codes,
    };
  },
  record(ctx, outcome, results) {
    const verdict = outcome.verdict;
    if (verdict.kind !== "challenge") return NO_OPS;
    // the findings a step-up will answer: this challenge's, and those of an earlier challenge
    // not answered yet (a person asked twice before stepping up answers both)
    const last = parseChallenged((results?.[0] as SwapReading | undefined)?.previous ?? null);
    const pending = last !== undefined && passedBy(ctx, last) === undefined ? last.codes : [];
    const codes = [...new Set([...outcome.open, ...pending])]
      .filter((c) => c !== "risk.sticky")
      .slice(0, MAX_CODES);
    const value: Challenged = { at: ctx.now, acr: verdict.acrValues, codes };
    const op: StoreOp = {
      op: "swap",
      key: { tag: tags.subject(ctx), name: CHALLENGED },
      value: JSON.stringify(value),
      ttlMs: ctx.policy.doc.signals.step_up.remember_seconds * 1000,
    };
    return [op];
  },
};

/** How this request passed the challenge ("login" or "clearance"), or undefined. */
function passedBy(ctx: SignalContext, last: Challenged): "login" | "clearance" | undefined {
  const authTime = ctx.caller.authTime;
  if (authTime !== undefined && authTime * 1000 > last.at && meets(ctx, last.acr)) return "login";
  return clearanceBound(ctx) ? "clearance" : undefined;
}

/**
 * The caller's `acr` is one of the `acr_values` asked, or one of its `amr` is (deployments that
 * ask for "mfa" get it as an amr); when none were asked, a method the policy counts as strong.
 */
function meets(ctx: SignalContext, acrValues: string): boolean {
  const { acr, amr } = ctx.caller;
  const asked = acrValues.split(" ").filter((v) => v !== "");
  if (asked.length > 0)
    return (acr !== "" && asked.includes(acr)) || amr.some((m) => asked.includes(m));
  const cfg = ctx.policy.doc.signals.weak_auth;
  return (
    amr.some((m) => cfg.strong_amr.includes(m)) || (acr !== "" && cfg.strong_acr.includes(acr))
  );
}

function parseChallenged(raw: string | null): Challenged | undefined {
  if (raw === null) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<Challenged>;
    if (typeof v.at !== "number" || !Number.isFinite(v.at) || typeof v.acr !== "string") {
      return undefined;
    }
    const codes = Array.isArray(v.codes) ? v.codes.filter((c) => typeof c === "string") : [];
    return { at: v.at, acr: v.acr, codes };
  } catch {
    return undefined;
  }
}
