import type * as grpc from "@grpc/grpc-js";
import type { Decision, Pipeline, Runtime } from "../access/pipeline.js";
import type { AccessRequest } from "../access/request.js";
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
import { type CheckResponseMessage, renderCheckResponse } from "./check-response.js";

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
}

/** Reads the call's gRPC metadata as a header getter (the first string value of a name). */
export function metadataHeader(metadata: grpc.Metadata): HeaderGetter {
  return (name) => {
    const v = metadata.get(name)[0];
    return typeof v === "string" ? v : undefined;
  };
}

/**
 * The Envoy `Authorization/Check` handler and riskgate's one error boundary: it always answers
 * a CheckResponse. Malformed requests and unexpected errors become the documented safe outcome.
 */
export function createCheckHandler(
  deps: CheckHandlerDeps,
): grpc.handleUnaryCall<CheckRequestMessage, CheckResponseMessage> {
  const { pipeline, logger } = deps;

  return (call, callback) => {
    const started = process.hrtime.bigint();
    deps.inflight?.(1);
    const runtime = deps.runtime();
    let req: AccessRequest | undefined;
    const finish = (decision: Decision, error?: unknown) => {
      const response = renderCheckResponse(
        decision.verdict,
        req ?? placeholderRequest(),
        runtime.policy.doc.decisions,
      );
      callback(null, response);
      deps.inflight?.(-1);
      if (deps.onDecision) {
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
      }
    };
    const fail = (err: unknown) => {
      const error = asRiskgateError(err);
      const malformed = error instanceof MalformedCheckRequest;
      if (!malformed)
        logger.error({ err: error, request_id: req?.id }, "internal error during Check");
      finish(safeDecision(runtime, req, malformed), error);
    };
    try {
      req = toAccessRequest(call.request ?? {}, {
        trustedHops: deps.trustedHops,
        now: deps.clock(),
      });
      pipeline.evaluate(runtime, req).then(finish, fail);
    } catch (err) {
      fail(err);
    }
  };
}

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
function safeDecision(
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
