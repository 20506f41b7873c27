import { createHash } from "node:crypto";
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { CompositePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { B3Propagator } from "@opentelemetry/propagator-b3";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import type { DecisionEvent } from "../transport/envoy-grpc.js";

export interface TracingOptions {
  readonly exporter: SpanExporter;
  /** Export each span at once (tests) instead of in batches. */
  readonly simple?: boolean;
  readonly serviceName: string;
  /** Root sampling ratio (0..1); a sampled or unsampled parent is always followed. */
  readonly ratio: number;
  /** Whether the subject goes on spans: not at all, hashed with the salt, or as is. */
  readonly subject: "off" | "hash" | "plain";
  readonly salt: string;
}

export interface Tracing {
  /** Draws the decision span (and its children) after the fact, in the request's trace. */
  record(event: DecisionEvent): void;
  shutdown(): Promise<void>;
}

const metadataGetter: TextMapGetter<DecisionEvent["metadata"]> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const v = carrier.get(key)[0];
    return typeof v === "string" ? v : undefined;
  },
};

const headerGetter: TextMapGetter<ReadonlyMap<string, string>> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key),
};

/** Hashes an identifier for telemetry: sha256(salt + value), 16 hex characters. */
export function hashId(salt: string, value: string): string {
  return createHash("sha256").update(salt).update(value).digest("hex").slice(0, 16);
}

/**
 * One `riskgate.check` span per Check, in the caller's trace: the parent comes from the gRPC
 * call's metadata (Envoy's own ext_authz span), else from the original request's headers;
 * W3C traceparent/tracestate and B3 (single and multi header) are understood. The span is
 * built after the answer was sent, with the decision's real start and end times, and its
 * identity and store children drawn from the pipeline's stage timings.
 */
export function createTracing(options: TracingOptions): Tracing {
  const sampler: Sampler = new ParentBasedSampler({
    root: options.ratio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(options.ratio),
  });
  const processor = options.simple
    ? new SimpleSpanProcessor(options.exporter)
    : new BatchSpanProcessor(options.exporter);
  const provider = new BasicTracerProvider({
    sampler,
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer("riskgate");
  const propagator = new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new B3Propagator()],
  });
  const epoch = (perfMs: number) => performance.timeOrigin + perfMs;

  function parentOf(event: DecisionEvent): Context {
    const fromCall = propagator.extract(ROOT_CONTEXT, event.metadata, metadataGetter);
    if (trace.getSpanContext(fromCall) !== undefined) return fromCall;
    if (event.req === undefined) return ROOT_CONTEXT;
    return propagator.extract(ROOT_CONTEXT, event.req.headers, headerGetter);
  }

  return {
    record(event) {
      const { verdict, enforced, timings } = event.decision;
      const start = event.req?.receivedAt ?? Date.now() - Number(event.durationNs / 1_000_000n);
      const end = start + Number(event.durationNs) / 1e6;
      const parent = parentOf(event);
      const span: Span = tracer.startSpan(
        "riskgate.check",
        { kind: SpanKind.SERVER, startTime: start },
        parent,
      );
      if (!span.isRecording()) {
        span.end(end);
        return;
      }
      const reasons = verdict.reasons.map((r) => r.code);
      span.setAttributes({
        "riskgate.decision": verdict.kind,
        "riskgate.enforced_decision": enforced.kind,
        "riskgate.score": verdict.score,
        "riskgate.risk_level": riskLevel(verdict.score),
        "riskgate.reasons": reasons,
        "riskgate.mode": event.decision.mode,
        "riskgate.failure_mode": event.decision.failureMode,
        "riskgate.policy_version": event.decision.policyVersion,
        ...(verdict.tier === undefined ? {} : { "riskgate.tier": verdict.tier }),
        ...(verdict.route === undefined ? {} : { "riskgate.route": verdict.route }),
        ...(verdict.entitlement === undefined
          ? {}
          : { "riskgate.entitlement": verdict.entitlement }),
        ...(event.req === undefined
          ? {}
          : {
              "http.request.method": event.req.method,
              "url.path": event.req.path,
              "server.address": event.req.host,
              "client.address": event.req.clientIp,
              "riskgate.request_id": event.req.id,
            }),
      });
      if (verdict.subject !== undefined && options.subject !== "off") {
        span.setAttribute(
          "enduser.id",
          options.subject === "hash" ? hashId(options.salt, verdict.subject) : verdict.subject,
        );
      }
      const ctx = trace.setSpan(parent, span);
      if (timings.identify) {
        const child = tracer.startSpan(
          "riskgate.identify",
          { startTime: epoch(timings.identify.start) },
          ctx,
        );
        if (timings.identify.source)
          child.setAttribute("riskgate.identity_source", timings.identify.source);
        if (timings.identify.cached !== undefined) {
          child.setAttribute("riskgate.token_cached", timings.identify.cached);
        }
        child.end(epoch(timings.identify.end));
      }
      if (timings.store) {
        const child = tracer.startSpan(
          "riskgate.store",
          { startTime: epoch(timings.store.start) },
          ctx,
        );
        child.setAttribute("riskgate.store_ops", timings.store.ops);
        span.setAttribute("riskgate.store_ms", timings.store.end - timings.store.start);
        if (!timings.store.ok)
          child.setStatus({ code: SpanStatusCode.ERROR, message: "store failed" });
        child.end(epoch(timings.store.end));
      }
      if (event.error !== undefined || reasons.includes("failure.internal")) {
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: "internal error; safe outcome answered",
        });
        if (event.error instanceof Error) span.recordException(event.error);
      }
      span.end(end);
    },
    shutdown: () => provider.shutdown(),
  };
}

/** The risk level shown on dashboards: low < 40 <= medium < 80 <= high. */
export function riskLevel(score: number): "low" | "medium" | "high" {
  return score >= 80 ? "high" : score >= 40 ? "medium" : "low";
}
