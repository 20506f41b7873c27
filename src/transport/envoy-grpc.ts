import type * as grpc from "@grpc/grpc-js";
import type { Decision, Pipeline } from "../access/pipeline.js";
import type { AccessRequest } from "../access/request.js";
import type { Runtime } from "../access/runtime.js";
import type { Verdict } from "../access/verdict.js";
import { asRiskgateError } from "../errors.js";
import type { DecisionEvent } from "../telemetry/decision-event.js";
import type { Logger } from "../telemetry/logger.js";
import type { HeaderGetter } from "../telemetry/trace-header.js";
import {
  type CheckRequestMessage,
  MalformedCheckRequest,
  toAccessRequest,
} from "./check-request.js";
import { type CheckResponseMessage, GrpcCode, renderCheckResponse } from "./check-response.js";

export interface CheckHandlerDeps {
  readonly pipeline: Pipeline;
  /** The current policy snapshot; read once per Check so a reload never splits a decision. */
  readonly runtime: () => Runtime;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly trustedHops: number;
  /** Observes every decision (telemetry); its errors are caught and logged. */
  readonly onDecision?: (event: DecisionEvent) => void;
  /** Counts Checks in flight (+1 on arrival, -1 once answered). */
  readonly inflight?: (delta: 1 | -1) => void;
  /** Renders a verdict as a CheckResponse (injected by tests; `renderCheckResponse` by default). */
  readonly render?: typeof renderCheckResponse;
}

/** Reads the call's gRPC metadata as a header getter (the first string value of a name). */
export function metadataHeader(metadata: grpc.Metadata): HeaderGetter {
  return (name) => {
    const v = metadata.get(name)[0];
    return typeof v === "string" ? v : undefined;
  };
}

/**
 * The Envoy `Authorization/Check` handler and riskgate's one error boundary: every call is
 * answered exactly once with a CheckResponse, whatever throws. Malformed requests and
 * unexpected errors (in the pipeline, in rendering, in reading the snapshot) become the
 * documented safe outcome; when even that cannot be rendered, a bare 503 denial.
 */
export function createCheckHandler(
  deps: CheckHandlerDeps,
): grpc.handleUnaryCall<CheckRequestMessage, CheckResponseMessage> {
  const { pipeline, logger } = deps;
  const render = deps.render ?? renderCheckResponse;

  return (call, callback) => {
    const started = process.hrtime.bigint();
    let answered = false;
    let runtime: Runtime | undefined;
    let req: AccessRequest | undefined;
    const answer = (response: CheckResponseMessage) => {
      if (answered) return;
      answered = true;
      try {
        callback(null, response);
      } catch (err) {
        logger.error({ err, request_id: req?.id }, "Check answer failed");
      }
      try {
        deps.inflight?.(-1);
      } catch (err) {
        logger.error({ err }, "inflight gauge failed");
      }
    };
    const observe = (decision: Decision, error: unknown) => {
      if (!deps.onDecision) return;
      try {
        deps.onDecision({
          decision,
          req,
          traceHeader: metadataHeader(call.metadata),
          durationNs: process.hrtime.bigint() - started,
          ...(error === undefined ? {} : { error }),
        });
      } catch (err) {
        logger.error({ err }, "decision observer failed");
      }
    };
    const finish = (decision: Decision, error?: unknown) => {
      if (answered) return;
      let response: CheckResponseMessage;
      try {
        response = render(
          decision.verdict,
          req ?? placeholderRequest(),
          (runtime as Runtime).policy.doc.decisions,
        );
      } catch (err) {
        if (error !== undefined) {
          // the safe outcome itself could not be rendered: the last resort answers
          logger.error({ err, request_id: req?.id }, "safe outcome not rendered; denying");
          answer(LAST_RESORT);
          observe(decision, error);
          return;
        }
        fail(err);
        return;
      }
      answer(response);
      observe(decision, error);
    };
    const fail = (err: unknown) => {
      if (answered) return;
      const error = asRiskgateError(err);
      const malformed = error instanceof MalformedCheckRequest;
      if (!malformed) {
        logger.error({ err: error, request_id: req?.id }, "internal error during Check");
      }
      if (runtime === undefined) {
        answer(LAST_RESORT);
        return;
      }
      let decision: Decision;
      try {
        decision = safeDecision(runtime, req, malformed);
      } catch (safeErr) {
        logger.error({ err: safeErr, request_id: req?.id }, "safe outcome not decided; denying");
        answer(LAST_RESORT);
        return;
      }
      finish(decision, error);
    };
    try {
      deps.inflight?.(1);
      runtime = deps.runtime();
      req = toAccessRequest(call.request ?? {}, {
        trustedHops: deps.trustedHops,
        now: deps.clock(),
      });
      pipeline
        .evaluate(runtime, req)
        .then((decision) => finish(decision), fail)
        // finish and fail answer whatever throws inside them; this is the net under that net
        .catch((err: unknown) => {
          logger.error({ err, request_id: req?.id }, "Check boundary failed; denying");
          answer(LAST_RESORT);
        });
    } catch (err) {
      try {
        fail(err);
      } catch (lastErr) {
        logger.error({ err: lastErr }, "Check boundary failed; denying");
        answer(LAST_RESORT);
      }
    }
  };
}

/**
 * The answer when not even the safe outcome could be rendered: a failure denial (503, as a
 * rendered `failure` denial), never an allow, since an allow that failed to render may not have
 * stripped spoofed identity headers.
 */
const LAST_RESORT: CheckResponseMessage = Object.freeze({
  status: { code: GrpcCode.UNAVAILABLE, message: "riskgate internal error" },
  denied_response: { status: { code: 503 }, headers: [], body: "" },
});

function placeholderRequest(): AccessRequest {
  return {
    id: "",
    method: "",
    host: "",
    path: "/",
    query: "",
    headers: new Map(),
    clientIp: "",
    size: -1,
    principal: "",
    sni: "",
    contextExtensions: {},
    metadata: {},
    receivedAt: 0,
  };
}

/** The outcome for a request the pipeline could not decide: malformed, or an internal error. */
export function safeDecision(
  runtime: Runtime,
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
  return {
    verdict,
    enforced: verdict,
    timings: {},
    mode: policy.doc.mode,
    failureMode: policy.doc.failure.mode,
    policyVersion: policy.version,
  };
}
