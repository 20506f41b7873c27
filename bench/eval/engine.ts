/**
 * The one place the evaluation touches riskgate's code: decisions online, one at a time, from
 * the same entry point `riskgate replay` uses (`replayDecisions`: Envoy CheckRequests in proto3
 * JSON in, decision records out, the request's own time as the clock, a fresh memory store).
 * The closed loop needs each verdict before it writes the next request, so the input is a
 * channel the loop fills one line at a time; nothing else of the pipeline is imported.
 */
import { loadPolicyFile } from "../../src/access/policy.js";
import { type ReplayedDecision, replayDecisions } from "../../src/replay/replay.js";
import type { DecisionRecord } from "./score.js";

/** A verdict as a client sees it: the decision record, and Retry-After on a throttle. */
export interface EngineVerdict {
  readonly record: DecisionRecord;
  readonly retryAfterSeconds?: number;
}

export interface EvalEngine {
  /** Decides one CheckRequest (proto3 JSON text); calls must come in time order. */
  decide(checkRequestJson: string): Promise<EngineVerdict>;
  close(): Promise<void>;
}

/** Opens the real pipeline for a policy file, trusting the keys of a JWKS file. */
export async function openEngine(policyFile: string, jwksFile: string): Promise<EvalEngine> {
  const policy = await loadPolicyFile(policyFile);
  const queued: string[] = [];
  let ended = false;
  const lines: AsyncIterable<string> = {
    [Symbol.asyncIterator]: () => ({
      next: (): Promise<IteratorResult<string>> => {
        const line = queued.shift();
        if (line !== undefined) return Promise.resolve({ value: line, done: false });
        if (ended) return Promise.resolve({ value: undefined, done: true });
        // the loop always queues a line before it asks for its decision
        return Promise.reject(new Error("eval engine: a decision was asked with no request"));
      },
    }),
  };
  const decisions: AsyncGenerator<ReplayedDecision> = replayDecisions(
    { policy, keys: jwksFile },
    lines,
  );
  return {
    async decide(checkRequestJson) {
      queued.push(checkRequestJson);
      const next = await decisions.next();
      if (next.done) throw new Error("eval engine: the replay ended early");
      const enforced = next.value.decision.enforced;
      return {
        record: next.value.record,
        ...(enforced.kind === "throttle" ? { retryAfterSeconds: enforced.retryAfterSeconds } : {}),
      };
    },
    async close() {
      ended = true;
      await decisions.return(undefined);
    },
  };
}
