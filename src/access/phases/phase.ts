import type { OpResult, StoreOp } from "../../state/store.js";
import type { Caller } from "../license.js";
import type { DecisionTrace, StageTimings } from "../pipeline.js";
import type { PolicySnapshot } from "../policy-snapshot.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import type { ResolvedRoute } from "../routes.js";
import { scoreOf } from "../score.js";
import type { ClientClass, Signal, SignalContext } from "../signals/signal.js";
import type { DecisionContext, DenyCause, Verdict } from "../verdict.js";

/**
 * The phases that decide a Check, in order (Authorino's identity -> metadata -> authorization,
 * as one table): each reads what the one before it found and either hands its own result on
 * or ends the decision with a verdict. Shadow mode and the writes after the verdict follow,
 * outside the time budget (pipeline.ts).
 */
export type PhaseName = "identify" | "license" | "gather" | "score" | "rules" | "decide";

/** The verdict a phase ends the decision with. */
export class Ended {
  constructor(readonly verdict: Verdict) {}
}

/**
 * A phase's typed result: the next phase's input, or the verdict that ends the decision. The
 * input goes on unwrapped: a Check runs every phase, and a wrapper each time is garbage.
 */
export type PhaseResult<Out> = Out | Ended;

export interface Phase<In, Out> {
  readonly name: PhaseName;
  run(check: CheckRun, input: In): PhaseResult<Out> | Promise<PhaseResult<Out>>;
}

/** True when each phase of the table takes what the one before it gives. */
export type Linked<T extends readonly unknown[]> = T extends readonly [
  Phase<infer _In, infer Out>,
  Phase<infer In2, infer Out2>,
  ...infer Rest,
]
  ? [Out] extends [In2]
    ? Linked<[Phase<In2, Out2>, ...Rest]>
    : false
  : true;

/** One enabled signal of this Check: the signal, its store ops, and what they read. */
export interface ActiveSignal {
  readonly signal: Signal;
  readonly ops: readonly StoreOp[];
  /** Aligned with `ops` (empty when it has none); undefined when the store failed. */
  readonly results: readonly OpResult<StoreOp>[] | undefined;
}

/**
 * What the phases learnt besides their results: for the decision's observers (audit) and for
 * the writes after the verdict. Written as each phase gets there, so it holds what was known
 * even when the time budget ran out first (unset where a phase did not run).
 */
export interface Learned {
  caller?: Caller;
  deviceId?: string;
  /** The request's client class, once the signal context was built. */
  clientClass?: ClientClass;
  /** The signal context and every enabled signal's record, once the signals were evaluated. */
  signals?: { readonly ctx: SignalContext; readonly active: readonly ActiveSignal[] } | undefined;
  /** The deciding batch answered (false: the store failed and stateful signals sat out). */
  stateRead?: boolean;
}

/** One Check as the phases see it. */
export interface CheckRun {
  readonly snapshot: PolicySnapshot;
  readonly req: AccessRequest;
  readonly route: ResolvedRoute;
  readonly timings: StageTimings;
  readonly trace: DecisionTrace | undefined;
  readonly learned: Learned;
}

export const next = <Out>(value: Out): PhaseResult<Out> => value;
export const ends = (verdict: Verdict): Ended => new Ended(verdict);

/** A deny for `cause`, with `reason` after the reasons found so far. */
export function deny(
  base: DecisionContext,
  cause: Exclude<DenyCause, "malformed">,
  reason: Reason,
): Ended {
  const reasons = [...base.reasons, reason];
  return ends({ ...base, reasons, score: scoreOf(reasons), kind: "deny", cause });
}

/**
 * A table of phases: `linked` is `true` only when each phase takes what the one before it
 * gives, so a table that does not link up does not compile.
 */
export function phaseTable<const T extends readonly Phase<never, unknown>[]>(
  phases: T,
  _linked: Linked<T>,
): T {
  return phases;
}

/**
 * Runs the table in order until a phase ends the decision. The table's links are checked by
 * the compiler ({@link Linked}); here each result is handed on as it came.
 */
export async function runPhases(
  phases: readonly Phase<never, unknown>[],
  check: CheckRun,
): Promise<Verdict> {
  let value: unknown;
  for (const phase of phases) {
    const pending = (phase as Phase<unknown, unknown>).run(check, value);
    // most phases answer at once: awaiting only real promises saves a tick per phase
    const result = pending instanceof Promise ? await pending : pending;
    if (result instanceof Ended) return result.verdict;
    value = result;
  }
  throw new TypeError(`the last phase (${phases.at(-1)?.name}) gave no verdict`);
}
