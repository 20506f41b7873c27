import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { CompositePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { B3Propagator } from "@opentelemetry/propagator-b3";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_RPC_METHOD,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
  RPC_SYSTEM_NAME_VALUE_GRPC,
} from "@opentelemetry/semantic-conventions";
import type { StageTimings } from "../access/pipeline.js";
import type { Verdict } from "../access/verdict.js";
import type { DecisionEvent } from "./decision-event.js";
import { riskLevel } from "./risk-level.js";
import type { SubjectHasher } from "./subject-hash.js";
import type { HeaderGetter } from "./trace-header.js";

/** The samplers of OTEL_TRACES_SAMPLER that riskgate understands. */
export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio";

export interface TracingOptions {
  readonly exporter: SpanExporter;
  readonly serviceName: string;
  /** Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES). */
  readonly resourceAttributes?: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  /** Ratio of the `*traceidratio` samplers (0..1). */
  readonly ratio: number;
  /** Whether the subject goes on spans (`user.id`): not at all, hashed, or as is. */
  readonly subjectAttribute: "off" | "hash" | "plain";
  readonly hash: SubjectHasher;
  /** Export each span as it ends (console exporter) instead of in batches. */
  readonly simple?: boolean;
}

/** The trace a decision belongs to, for the audit line; `spanId` when riskgate drew a span. */
export interface TraceRef {
  readonly traceId: string;
  readonly spanId?: string;
}

export interface Tracing {
  /** Draws the decision span (and its children) after the fact, in the request's trace. */
  record(event: DecisionEvent): TraceRef | undefined;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The names the W3C and B3 propagators read (a getter cannot list what it holds). */
const TRACE_HEADERS = [
  "traceparent",
  "tracestate",
  "b3",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
];

const callGetter: TextMapGetter<HeaderGetter> = {
  keys: (get) => TRACE_HEADERS.filter((name) => get(name) !== undefined),
  get: (get, key) => get(key),
};

const headerGetter: TextMapGetter<ReadonlyMap<string, string>> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key),
};

/** The gRPC method riskgate serves, as `rpc.method` wants it. */
const RPC_METHOD = "envoy.service.auth.v3.Authorization/Check";

/**
 * `user.id` is not yet a stable semantic convention: the package exports it only from its
 * incubating entry point, which may change in a minor release, so it is copied here as the
 * package advises.
 */
const ATTR_USER_ID = "user.id";

/** The wall-clock time (ms) of a `performance.now()` reading. */
function epoch(perfMs: number): number {
  return performance.timeOrigin + perfMs;
}

/** The attributes of a `riskgate.check` span; the situational ones only when they apply. */
function checkAttributes(event: DecisionEvent, options: TracingOptions): Attributes {
  const { verdict, enforced, timings } = event.decision;
  const reasons = verdict.reasons.map((r) => r.code);
  const req = event.req;
  const attributes: Attributes = {
    ...(event.transport === "http"
      ? { "riskgate.transport": "http" }
      : { [ATTR_RPC_SYSTEM_NAME]: RPC_SYSTEM_NAME_VALUE_GRPC, [ATTR_RPC_METHOD]: RPC_METHOD }),
    "riskgate.decision": verdict.kind,
    "riskgate.score": verdict.score,
    "riskgate.risk_level": riskLevel(verdict.score),
    "riskgate.reasons": reasons,
    "riskgate.mode": event.decision.mode,
    "riskgate.policy_version": event.decision.policyVersion,
  };
  // every attribute costs serialisation on each span: the situational ones only when so
  if (verdict.shadowOf !== undefined) attributes["riskgate.would_be"] = enforced.kind;
  if (reasons.some((code) => code.startsWith("failure."))) {
    attributes["riskgate.failure_mode"] = event.decision.failureMode;
  }
  if (verdict.tier !== undefined) attributes["riskgate.tier"] = verdict.tier;
  if (verdict.route !== undefined) attributes["riskgate.route"] = verdict.route;
  if (verdict.entitlement !== undefined) {
    attributes["riskgate.entitlement"] = verdict.entitlement;
  }
  if (req !== undefined) {
    attributes["riskgate.request_id"] = req.id;
    attributes[ATTR_HTTP_REQUEST_METHOD] = req.method;
    attributes[ATTR_URL_PATH] = req.path;
    attributes[ATTR_SERVER_ADDRESS] = req.host;
    if (req.clientIp !== "") attributes[ATTR_CLIENT_ADDRESS] = req.clientIp;
  }
  if (verdict.subject !== undefined && options.subjectAttribute !== "off") {
    attributes[ATTR_USER_ID] =
      options.subjectAttribute === "hash" ? options.hash(verdict.subject) : verdict.subject;
  }
  const identify = timings.identify;
  if (identify?.source !== undefined) attributes["riskgate.identity_source"] = identify.source;
  if (identify?.method !== undefined) attributes["riskgate.identity_method"] = identify.method;
  if (identify?.peer !== undefined) attributes["riskgate.identity_peer"] = identify.peer;
  if (identify?.cached !== undefined) attributes["riskgate.token_cached"] = identify.cached;
  if (timings.store !== undefined) {
    attributes["riskgate.store_ms"] = timings.store.end - timings.store.start;
  }
  return attributes;
}

/** The score's explanation, one event per reason, as a reviewer reads it in the trace. */
function addReasonEvents(span: Span, reasons: Verdict["reasons"], end: number): void {
  for (const r of reasons) {
    span.addEvent(
      "riskgate.reason",
      r.detail === undefined
        ? { "riskgate.reason.code": r.code, "riskgate.reason.points": r.points }
        : {
            "riskgate.reason.code": r.code,
            "riskgate.reason.points": r.points,
            "riskgate.reason.detail": r.detail,
          },
      end,
    );
  }
}

/** The children of a check span, drawn from the pipeline's stage timings. */
function drawStages(tracer: Tracer, ctx: Context, timings: StageTimings, end: number): void {
  const identify = timings.identify;
  // a token verified from the cache took microseconds: the attributes above say so, and
  // a child span (a third of the tracing cost) is drawn only for a real verification
  if (identify !== undefined && identify.cached !== true) {
    tracer
      .startSpan(
        "riskgate.identify",
        { kind: SpanKind.INTERNAL, startTime: epoch(identify.start) },
        ctx,
      )
      .end(epoch(identify.end));
  }
  const store = timings.store;
  if (store !== undefined) {
    const child = tracer.startSpan(
      "riskgate.store",
      { kind: SpanKind.INTERNAL, startTime: epoch(store.start) },
      ctx,
    );
    child.setAttribute("riskgate.store_ops", store.ops);
    if (!store.ok) {
      child.setStatus({ code: SpanStatusCode.ERROR, message: "store call failed" });
    }
    child.end(epoch(store.end));
  }
  const webhook = timings.webhook;
  if (webhook !== undefined) {
    const child = tracer.startSpan(
      "riskgate.webhook",
      { kind: SpanKind.CLIENT, startTime: epoch(webhook.start) },
      ctx,
    );
    child.setAttribute("riskgate.webhook.outcome", webhook.outcome);
    if (webhook.outcome !== "ok" && webhook.outcome !== "cached") {
      child.setStatus({ code: SpanStatusCode.ERROR, message: `webhook ${webhook.outcome}` });
    }
    child.end(epoch(webhook.end));
  }
  // header and metadata sources are read in microseconds during the signals: one instant
  // span each, so a trace shows what every tool in front said (or why it was ignored)
  const at = store === undefined ? end : epoch(store.end);
  for (const o of timings.external ?? []) {
    tracer
      .startSpan(
        "riskgate.external_source",
        {
          kind: SpanKind.INTERNAL,
          startTime: at,
          attributes: {
            "riskgate.external.source": o.source,
            "riskgate.external.outcome": o.outcome,
          },
        },
        ctx,
      )
      .end(at);
  }
}

/**
 * One `riskgate.check` span (kind SERVER) per Check, in the caller's trace: the parent comes
 * from the transport call's trace context (gRPC metadata: Envoy's own ext_authz span), else from the original request's
 * headers; W3C traceparent/tracestate and B3 (single and multi header) are understood. The span
 * is drawn after the answer was sent, with the decision's real start and end, and its identity
 * and store children come from the pipeline's stage timings, so tracing adds nothing to the
 * decision itself. Its own provider and propagators: nothing global is registered.
 */
export function createTracing(options: TracingOptions): Tracing {
  const parentBased = options.sampler.startsWith("parentbased_");
  const provider = new BasicTracerProvider({
    sampler: samplerOf(options.sampler, options.ratio),
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...options.resourceAttributes,
        [ATTR_SERVICE_NAME]: options.serviceName,
      }),
    ),
    spanProcessors: [
      options.simple
        ? new SimpleSpanProcessor(options.exporter)
        : new BatchSpanProcessor(options.exporter),
    ],
  });
  const tracer = provider.getTracer("riskgate");
  // W3C last: when a request carries both, the standard header wins
  const propagator = new CompositePropagator({
    propagators: [new B3Propagator(), new W3CTraceContextPropagator()],
  });

  function parentOf(event: DecisionEvent): Context {
    const fromCall = propagator.extract(ROOT_CONTEXT, event.traceHeader, callGetter);
    if (trace.getSpanContext(fromCall) !== undefined || event.req === undefined) return fromCall;
    return propagator.extract(ROOT_CONTEXT, event.req.headers, headerGetter);
  }

  return {
    record(event) {
      const parent = parentOf(event);
      const remote = trace.getSpanContext(parent);
      // a parent that said "not sampled" is followed without building a span at all
      if (remote !== undefined && parentBased && (remote.traceFlags & TraceFlags.SAMPLED) === 0) {
        return { traceId: remote.traceId };
      }
      // spans are drawn after the answer: it ended now, and started durationNs ago
      const end = epoch(performance.now());
      const start = end - Number(event.durationNs) / 1e6;
      const span = tracer.startSpan(
        "riskgate.check",
        { kind: SpanKind.SERVER, startTime: start },
        parent,
      );
      if (!span.isRecording()) {
        return remote === undefined ? undefined : { traceId: remote.traceId };
      }
      const { verdict, timings } = event.decision;
      span.setAttributes(checkAttributes(event, options));
      addReasonEvents(span, verdict.reasons, end);
      drawStages(tracer, trace.setSpan(parent, span), timings, end);
      if (isInternalError(event)) {
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: "internal error; the safe outcome was answered",
        });
        if (event.error instanceof Error) span.recordException(event.error, end);
      }
      span.end(end);
      const own = span.spanContext();
      return { traceId: own.traceId, spanId: own.spanId };
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** An internal error decided (not a malformed request, which is the caller's fault). */
function isInternalError(event: DecisionEvent): boolean {
  const reasons = event.decision.verdict.reasons;
  if (reasons.some((r) => r.code === "failure.internal")) return true;
  return event.error !== undefined && !reasons.some((r) => r.code === "request.malformed");
}

function samplerOf(name: SamplerName, ratio: number): Sampler {
  const root =
    name.endsWith("always_on") || (name.endsWith("traceidratio") && ratio >= 1)
      ? new AlwaysOnSampler()
      : name.endsWith("always_off")
        ? new AlwaysOffSampler()
        : new TraceIdRatioBasedSampler(ratio);
  return name.startsWith("parentbased_") ? new ParentBasedSampler({ root }) : root;
}
