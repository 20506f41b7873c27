import { OTLPTraceExporter as OtlpGrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as OtlpHttpExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { ConsoleSpanExporter, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { DestinationStream } from "pino";
import type { Settings } from "../config/settings.js";
import type { DecisionEvent } from "../transport/envoy-grpc.js";
import { type Audit, createAudit } from "./audit.js";
import type { Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createTracing, type Tracing } from "./tracing.js";

/** Telemetry configuration; {@link telemetryOptionsFromEnv} reads it from the environment. */
export interface TelemetryOptions {
  readonly tracing: {
    readonly enabled: boolean;
    readonly exporter?: SpanExporter;
    readonly simple?: boolean;
    readonly serviceName: string;
    readonly ratio: number;
    readonly subject: "off" | "hash" | "plain";
  };
  /** `host:port` of the Prometheus endpoint, or undefined for none. */
  readonly metricsAddress?: string;
  readonly audit: {
    readonly enabled: boolean;
    readonly allowSampleRate: number;
    readonly subject: "hash" | "plain";
    readonly file?: string;
    readonly destination?: DestinationStream;
    readonly random?: () => number;
  };
  /** Salt of hashed subjects (spans and audit). */
  readonly salt: string;
}

/** Tracing, metrics and audit behind one observer the server calls after each answer. */
export interface Telemetry {
  /** Records one decision everywhere that is on. Never throws. */
  onDecision(event: DecisionEvent): void;
  readonly metrics: Metrics;
  /** Bound port of /metrics (undefined when off). */
  readonly metricsPort: number | undefined;
  start(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Builds the telemetry; nothing listens or exports until `start()`. */
export function createTelemetry(options: TelemetryOptions, deps: { logger: Logger }): Telemetry {
  const metrics = createMetrics();
  const tracing: Tracing | undefined =
    options.tracing.enabled && options.tracing.exporter !== undefined
      ? createTracing({
          exporter: options.tracing.exporter,
          ...(options.tracing.simple ? { simple: true } : {}),
          serviceName: options.tracing.serviceName,
          ratio: options.tracing.ratio,
          subject: options.tracing.subject,
          salt: options.salt,
        })
      : undefined;
  const audit: Audit | undefined = options.audit.enabled
    ? createAudit({
        allowSampleRate: options.audit.allowSampleRate,
        subject: options.audit.subject,
        salt: options.salt,
        ...(options.audit.file ? { file: options.audit.file } : {}),
        ...(options.audit.destination ? { destination: options.audit.destination } : {}),
        ...(options.audit.random ? { random: options.audit.random } : {}),
      })
    : undefined;
  let metricsPort: number | undefined;
  let failures = 0;

  return {
    metrics,
    get metricsPort() {
      return metricsPort;
    },
    onDecision(event) {
      for (const part of [metrics.decision, tracing?.record, audit?.record]) {
        if (part === undefined) continue;
        try {
          part(event);
        } catch (err) {
          // telemetry must never break a decision; say so, but not once per request
          if (failures++ % 1000 === 0)
            deps.logger.error({ err }, "telemetry failed to record a decision");
        }
      }
    },
    async start() {
      if (options.metricsAddress !== undefined) {
        metricsPort = await metrics.listen(options.metricsAddress);
        deps.logger.info(
          { address: options.metricsAddress, metrics_port: metricsPort },
          "metrics on /metrics",
        );
      }
    },
    async shutdown() {
      await Promise.allSettled([tracing?.shutdown(), audit?.flush(), metrics.close()]);
    },
  };
}

/**
 * Telemetry options from the settings, and tracing from the standard OTEL_* variables: on when
 * OTEL_TRACES_EXPORTER is `otlp` or `console`, or OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP over
 * HTTP, or gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc); sampling by OTEL_TRACES_SAMPLER(_ARG).
 */
export function telemetryOptions(
  settings: Settings,
  env: Readonly<Record<string, string | undefined>>,
): TelemetryOptions {
  const exporterName =
    env.OTEL_TRACES_EXPORTER ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT ? "otlp" : "none");
  let exporter: SpanExporter | undefined;
  if (exporterName === "otlp") {
    const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
    exporter = protocol === "grpc" ? new OtlpGrpcExporter() : new OtlpHttpExporter();
  } else if (exporterName === "console") {
    exporter = new ConsoleSpanExporter();
  }
  const sampler = env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on";
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? "1");
  const ratio =
    sampler.includes("traceidratio") && Number.isFinite(arg) ? Math.min(1, Math.max(0, arg)) : 1;
  const metrics = settings.metricsAddress;
  return {
    tracing: {
      enabled: exporter !== undefined,
      ...(exporter ? { exporter } : {}),
      serviceName: env.OTEL_SERVICE_NAME ?? "riskgate",
      ratio,
      subject: settings.traceSubject,
    },
    ...(metrics === "off" || metrics === "" ? {} : { metricsAddress: metrics }),
    audit: {
      enabled: settings.audit,
      allowSampleRate: settings.auditAllowSample,
      subject: settings.auditSubject,
      ...(settings.auditFile === "" ? {} : { file: settings.auditFile }),
    },
    salt: settings.subjectSalt,
  };
}
