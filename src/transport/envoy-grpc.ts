import type * as grpc from "@grpc/grpc-js";
import type { HeaderGetter } from "../telemetry/trace-header.js";
import { type CheckRequestMessage, toAccessRequest } from "./check-request.js";
import { type CheckResponseMessage, GrpcCode, renderCheckResponse } from "./check-response.js";
import { type BoundaryDeps, decideAtBoundary } from "./decision-boundary.js";

export interface CheckHandlerDeps extends BoundaryDeps {
  readonly clock: () => number;
  readonly trustedHops: number;
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
 * The Envoy `Authorization/Check` handler: every call is answered exactly once with a
 * CheckResponse, whatever throws (the boundary is `decision-boundary.ts`, shared with the HTTP
 * transport). Malformed requests and unexpected errors become the documented safe outcome; when
 * even that cannot be rendered, a bare 503 denial.
 */
export function createCheckHandler(
  deps: CheckHandlerDeps,
): grpc.handleUnaryCall<CheckRequestMessage, CheckResponseMessage> {
  const render = deps.render ?? renderCheckResponse;
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
    });
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
