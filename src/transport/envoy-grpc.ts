import * as grpc from "@grpc/grpc-js";
import type { Refusal } from "../telemetry/decision-event.js";
import type { HeaderGetter } from "../telemetry/trace-header.js";
import { type CheckRequestMessage, toAccessRequest } from "./check-request.js";
import { type CheckResponseMessage, GrpcCode, renderCheckResponse } from "./check-response.js";
import { type BoundaryDeps, decideAtBoundary } from "./decision-boundary.js";

export interface CheckHandlerDeps extends BoundaryDeps {
  readonly clock: () => number;
  readonly trustedHops: number;
  /** Renders a verdict as a CheckResponse (injected by tests; `renderCheckResponse` by default). */
  readonly render?: typeof renderCheckResponse;
  /** Wall-clock milliseconds the call's deadline is compared with (`Date.now` by default). */
  readonly now?: () => number;
}

/** Reads the call's gRPC metadata as a header getter (the first string value of a name). */
export function metadataHeader(metadata: grpc.Metadata): HeaderGetter {
  return (name) => {
    const v = metadata.get(name)[0];
    return typeof v === "string" ? v : undefined;
  };
}

/**
 * The Envoy `Authorization/Check` handler: every call is answered exactly once with a
 * CheckResponse, whatever throws (the boundary is `decision-boundary.ts`, shared with the HTTP
 * transport). Malformed requests and unexpected errors become the documented safe outcome; when
 * even that cannot be rendered, a bare 503 denial.
 */
export function createCheckHandler(
  deps: CheckHandlerDeps,
): grpc.handleUnaryCall<CheckRequestMessage, CheckResponseMessage> {
  const render = deps.render ?? renderCheckResponse;
  const now = deps.now ?? Date.now;
  return (call, callback) => {
    decideAtBoundary(deps, {
      label: "Check",
      started: process.hrtime.bigint(),
      traceHeader: metadataHeader(call.metadata),
      read: () =>
        toAccessRequest(call.request ?? {}, { trustedHops: deps.trustedHops, now: deps.clock() }),
      render: (verdict, req, runtime) => render(verdict, req, runtime.policy.doc.decisions),
      send: (response) => callback(null, response),
      lastResort: LAST_RESORT,
      gone: () => {
        if (call.cancelled) return "cancelled";
        return deadlineMs(call.getDeadline()) <= now() ? "deadline" : undefined;
      },
      refuse: (why) => callback(REFUSALS[why]),
    });
  };
}

/** A call's deadline in epoch milliseconds (Infinity when it has none). */
function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * The gRPC status of a call answered without a decision. Each is an error of the ext_authz call,
 * not a denial: Envoy answers its `status_on_error` (403 unless set; riskgate's shipped configs
 * set 503), or lets the request through when `failure_mode_allow` is on. RESOURCE_EXHAUSTED is
 * sent at once, before the request is read, so an overloaded server spends nothing on it; a
 * call past its deadline or cancelled has no one waiting, and its status is for the record.
 */
const REFUSALS: Readonly<Record<Refusal, Partial<grpc.StatusObject>>> = Object.freeze({
  overloaded: {
    code: grpc.status.RESOURCE_EXHAUSTED,
    details: "riskgate: too many Checks in flight (RISKGATE_MAX_IN_FLIGHT); shed",
  },
  deadline: { code: grpc.status.DEADLINE_EXCEEDED, details: "deadline passed before the Check" },
  cancelled: { code: grpc.status.CANCELLED, details: "cancelled before the Check" },
});

/**
 * The answer when not even the safe outcome could be rendered: a failure denial (503, as a
 * rendered `failure` denial), never an allow, since an allow that failed to render may not have
 * stripped spoofed identity headers.
 */
const LAST_RESORT: CheckResponseMessage = Object.freeze({
  status: { code: GrpcCode.UNAVAILABLE, message: "riskgate internal error" },
  denied_response: { status: { code: 503 }, headers: [], body: "" },
});
