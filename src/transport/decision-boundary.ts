import { type Decision, fixedDecision, type Pipeline } from "../access/pipeline.js";
import type { PolicySnapshot } from "../access/policy-snapshot.js";
import type { ReasonCode } from "../access/reasons.js";
import { type AccessRequest, emptyRequest } from "../access/request.js";
import type { Verdict } from "../access/verdict.js";
import { asRiskgateError, type RiskgateError } from "../errors.js";
import type { DecisionEvent, Refusal } from "../telemetry/decision-event.js";
import type { Logger } from "../telemetry/logger.js";
import type { HeaderGetter } from "../telemetry/trace-header.js";
import type { Admission } from "./admission.js";

/** What every transport's handler shares: the pipeline, the snapshot and the observers. */
export interface BoundaryDeps {
  readonly pipeline: Pipeline;
  /** The current policy snapshot; read once per request so a reload never splits a decision. */
  readonly runtime: () => PolicySnapshot;
  readonly logger: Logger;
  /** Observes every decision (telemetry); its errors are caught and logged. */
  readonly onDecision?: (event: DecisionEvent) => void;
  /** Counts requests in flight (+1 on arrival, -1 once answered). */
  readonly inflight?: (delta: 1 | -1) => void;
  /** The bound on requests in flight; absent: every request is decided. */
  readonly admission?: Admission;
  /** Observes each request answered without a decision, and why (metrics; errors are logged). */
  readonly onRefused?: (why: Refusal, transport: NonNullable<DecisionEvent["transport"]>) => void;
}

/** One request as a transport hands it to the boundary: how to read it and how to answer. */
export interface BoundaryCall<Answer> {
  /** Names the transport in log lines ("Check", "forward-auth"). */
  readonly label: string;
  readonly transport?: DecisionEvent["transport"];
  /** `process.hrtime.bigint()` when the request arrived. */
  readonly started: bigint;
  readonly traceHeader: HeaderGetter;
  /** Reads the wire request; throws a RISKGATE_REQUEST_MALFORMED error for bad input. */
  read(): AccessRequest;
  /** Renders a decision for the wire (may throw: the boundary then answers the safe outcome). */
  render(verdict: Verdict, req: AccessRequest, runtime: PolicySnapshot): Answer;
  /** Writes the answer (may throw: logged). */
  send(answer: Answer): void;
  /** A failure denial that needs no policy: when not even the safe outcome can be rendered. */
  readonly lastResort: Answer;
  /** Why the caller no longer waits for an answer (checked before any work); undefined: it waits. */
  gone?(): "deadline" | "cancelled" | undefined;
  /** Answers a request that is not decided, cheaply (may throw: logged). */
  refuse(why: Refusal): void;
}

/**
 * A transport's one error boundary: reads the request, runs the pipeline and answers exactly
 * once, whatever throws. Bad input is a denial naming why (`request.malformed` or the error's
 * own reason); an unexpected error (in the pipeline, in rendering, in reading the snapshot) is
 * the configured safe outcome; when even that cannot be rendered, the transport's last resort
 * (a failure denial, never an allow: an allow that failed to render may not have stripped
 * spoofed identity headers). Every answered decision is reported to `onDecision`.
 *
 * Before any work, a request whose caller has gone (deadline passed, cancelled) or that finds
 * the admission bound full is refused at once, answered once by `call.refuse` and reported to
 * `onRefused`; it is not decided, so no decision, audit line or span records it.
 */
export function decideAtBoundary<Answer>(deps: BoundaryDeps, call: BoundaryCall<Answer>): void {
  const { pipeline, logger } = deps;
  if (refusedAtDoor(deps, call)) return;
  const x: Exchange = { answered: false, runtime: undefined, req: undefined };
  const answer = (a: Answer) => answerOnce(deps, call, x, a);
  const observe = (decision: Decision, error: unknown) =>
    observeDecision(deps, call, x, decision, error);
  const finish = (decision: Decision, error?: unknown) => {
    if (x.answered) return;
    let rendered: Answer;
    try {
      rendered = call.render(
        decision.verdict,
        x.req ?? emptyRequest(),
        x.runtime as PolicySnapshot,
      );
    } catch (err) {
      if (error !== undefined) {
        // the safe outcome itself could not be rendered: the last resort answers
        logger.error({ err, request_id: x.req?.id }, "safe outcome not rendered; denying");
        answer(call.lastResort);
        observe(decision, error);
        return;
      }
      fail(err);
      return;
    }
    answer(rendered);
    observe(decision, error);
  };
  const fail = (err: unknown) => {
    if (x.answered) return;
    const error = asRiskgateError(err);
    const malformed = error.code === "RISKGATE_REQUEST_MALFORMED";
    if (!malformed) {
      logger.error({ err: error, request_id: x.req?.id }, `internal error during ${call.label}`);
    }
    const { runtime, req } = x;
    if (runtime === undefined) {
      answer(call.lastResort);
      return;
    }
    let decision: Decision;
    try {
      decision = malformed ? refusal(runtime, req, error) : safeDecision(runtime, req, false);
    } catch (safeErr) {
      logger.error({ err: safeErr, request_id: req?.id }, "safe outcome not decided; denying");
      answer(call.lastResort);
      return;
    }
    finish(decision, error);
  };
  try {
    deps.inflight?.(1);
    x.runtime = deps.runtime();
    x.req = call.read();
    pipeline
      .evaluate(x.runtime, x.req)
      .then((decision) => finish(decision), fail)
      // finish and fail answer whatever throws inside them; this is the net under that net
      .catch((err: unknown) => {
        logger.error({ err, request_id: x.req?.id }, `${call.label} boundary failed; denying`);
        answer(call.lastResort);
      });
  } catch (err) {
    try {
      fail(err);
    } catch (lastErr) {
      logger.error({ err: lastErr }, `${call.label} boundary failed; denying`);
      answer(call.lastResort);
    }
  }
}

/** The state of one request at the boundary: what has been read, and whether it was answered. */
interface Exchange {
  answered: boolean;
  runtime: PolicySnapshot | undefined;
  req: AccessRequest | undefined;
}

/** Sends the answer unless one was sent, then frees the request's admission place. */
function answerOnce<Answer>(
  deps: BoundaryDeps,
  call: BoundaryCall<Answer>,
  x: Exchange,
  a: Answer,
): void {
  if (x.answered) return;
  x.answered = true;
  try {
    call.send(a);
  } catch (err) {
    deps.logger.error({ err, request_id: x.req?.id }, `${call.label} answer failed`);
  }
  deps.admission?.leave();
  try {
    deps.inflight?.(-1);
  } catch (err) {
    deps.logger.error({ err }, "inflight gauge failed");
  }
}

/** Reports an answered decision to `onDecision`; the observer's errors are logged. */
function observeDecision<Answer>(
  deps: BoundaryDeps,
  call: BoundaryCall<Answer>,
  x: Exchange,
  decision: Decision,
  error: unknown,
): void {
  if (!deps.onDecision) return;
  try {
    deps.onDecision({
      decision,
      req: x.req,
      traceHeader: call.traceHeader,
      durationNs: process.hrtime.bigint() - call.started,
      ...(call.transport === undefined ? {} : { transport: call.transport }),
      ...(error === undefined ? {} : { error }),
    });
  } catch (err) {
    deps.logger.error({ err }, "decision observer failed");
  }
}

/**
 * Refuses a request whose caller has gone, or that finds the admission bound full: true when
 * it was answered here (exactly once, by `call.refuse`). An admitted request holds its place
 * until the boundary answers it.
 */
function refusedAtDoor<Answer>(deps: BoundaryDeps, call: BoundaryCall<Answer>): boolean {
  let why: Refusal | undefined;
  try {
    why = call.gone?.();
  } catch (err) {
    deps.logger.error({ err }, `${call.label} deadline check failed; deciding`);
  }
  if (why === undefined && deps.admission !== undefined && !deps.admission.tryEnter()) {
    why = "overloaded";
  }
  if (why === undefined) return false;
  try {
    call.refuse(why);
  } catch (err) {
    deps.logger.error({ err, why }, `${call.label} refusal failed`);
  }
  try {
    deps.onRefused?.(why, call.transport ?? "grpc");
  } catch (err) {
    deps.logger.error({ err }, "refusal observer failed");
  }
  return true;
}

/** The outcome for a request the pipeline could not decide: malformed, or an internal error. */
export function safeDecision(
  runtime: PolicySnapshot,
  req: AccessRequest | undefined,
  malformed: boolean,
): Decision {
  const { policy } = runtime;
  const allow = !malformed && policy.doc.failure.on_internal_error === "allow";
  const base = {
    requestId: req?.id ?? "",
    score: 0,
    reasons: [
      malformed
        ? ({ code: "request.malformed", points: 0 } as const)
        : ({ code: "failure.internal", points: 0 } as const),
    ],
  };
  const verdict: Verdict = allow
    ? { ...base, kind: "allow" }
    : { ...base, kind: "deny", cause: malformed ? "malformed" : "failure" };
  return fixedDecision(policy, verdict);
}

/** The denial of a request the transport could not read, naming why (the error's reason). */
function refusal(
  runtime: PolicySnapshot,
  req: AccessRequest | undefined,
  error: RiskgateError,
): Decision {
  const reason = (error as { reason?: ReasonCode }).reason;
  if (reason === undefined) return safeDecision(runtime, req, true);
  return fixedDecision(runtime.policy, {
    kind: "deny",
    cause: "malformed",
    requestId: req?.id ?? "",
    score: 0,
    reasons: [{ code: reason, points: 0, detail: error.message }],
  });
}
