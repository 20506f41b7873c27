import type { Decision } from "../access/pipeline.js";
import type { AccessRequest } from "../access/request.js";
import type { HeaderGetter } from "./trace-header.js";

/**
 * One answered request, as every transport reports it to telemetry (spans, metrics, audit).
 * Nothing in it is specific to a wire protocol, so a gRPC and an HTTP transport emit the same.
 */
export interface DecisionEvent {
  readonly decision: Decision;
  /** The normalised request; undefined when the wire message could not be read. */
  readonly req: AccessRequest | undefined;
  /**
   * The transport call's own trace context by lower-case name (the ext_authz call's gRPC
   * metadata: Envoy's span), read before the original request's headers.
   */
  readonly traceHeader: HeaderGetter;
  /** Time spent inside the server for this request, in nanoseconds. */
  readonly durationNs: bigint;
  readonly error?: unknown;
  /** The transport that answered; "grpc" when absent. */
  readonly transport?: "grpc" | "http";
}

/**
 * Why a request was answered without a decision: too many Checks in flight (`overloaded`), or
 * its caller no longer waited (`deadline` passed, `cancelled`).
 */
export type Refusal = "overloaded" | "deadline" | "cancelled";
