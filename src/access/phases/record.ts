import type { Store, StoreOp } from "../../state/store.js";
import type { Policy } from "../policy.js";
import type { AccessRequest } from "../request.js";
import { type Outcome, openFinding, plainAllow, type Signal } from "../signals/signal.js";
import type { Verdict } from "../verdict.js";
import type { Learned } from "./phase.js";

export interface RecordDeps {
  readonly store: Store;
  readonly signals: readonly Signal[];
  readonly onStoreError?: ((err: unknown) => void) | undefined;
}

/**
 * Record: the writes the verdict allows, after the answer. Shared rate windows count served
 * requests, the profile learns from trusted ones (an allow with no open finding), refusals are
 * counted. One batch that nothing waits on, so the deciding path keeps its one round trip.
 */
export function recordPhase(
  deps: RecordDeps,
): (
  policy: Policy,
  req: AccessRequest,
  enforced: Verdict,
  verdict: Verdict,
  learned: Learned,
) => void {
  // the signals that write after every verdict, found once rather than on every Check
  const everyCheck = deps.signals.filter((s) => s.recordEvery !== undefined);
  const keepsTrust = new Set(deps.signals.flatMap((s) => s.keepsTrust ?? []));
  return (policy, req, enforced, verdict, learned) => {
    const ops: StoreOp[] = [];
    if (learned.signals !== undefined) {
      const { ctx, active } = learned.signals;
      const outcome: Outcome = {
        served:
          verdict.kind === "allow" || (verdict.kind === "challenge" && verdict.style === "header"),
        trusted: learned.stateRead === true && teaches(enforced, keepsTrust),
        verdict,
        enforced,
        open: enforced.reasons.filter((r) => openFinding(r, keepsTrust)).map((r) => r.code),
      };
      for (const { signal, results } of active) {
        if (signal.record === undefined) continue;
        for (const op of signal.record(ctx, outcome, results ?? NO_RESULTS)) ops.push(op);
      }
    }
    for (const signal of everyCheck) {
      for (const op of signal.recordEvery?.(policy, req, enforced) ?? []) ops.push(op);
    }
    if (ops.length === 0) return;
    deps.store
      .exec({ ops, now: req.receivedAt, background: true })
      .catch((err: unknown) => deps.onStoreError?.(err));
  };
}

const NO_RESULTS: readonly [] = Object.freeze([]) as readonly [];

/**
 * Whether an enforced verdict may teach the profile: an allow (not a downgrade) with no open
 * finding, or one that passed the step-up its subject's last challenge asked for (the place,
 * device and network it was passed from become known). An allow that scored under the
 * challenge threshold with a new country or device on it is still suspect: teaching it would
 * make an attacker's place the subject's normal.
 */
function teaches(enforced: Verdict, keepsTrust: ReadonlySet<string>): boolean {
  if (!plainAllow(enforced)) return false;
  if (enforced.reasons.some((r) => r.code === "challenge.stepped_up")) return true;
  return !enforced.reasons.some((r) => openFinding(r, keepsTrust));
}
