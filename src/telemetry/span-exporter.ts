import type { SpanExporter } from "@opentelemetry/sdk-trace-base";

/** OTLP transports (OTEL_EXPORTER_OTLP_PROTOCOL). */
export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";

/** Which span exporter to build at start, as the OTEL_* variables describe it. */
export type ExporterSpec =
  | {
      readonly kind: "otlp";
      readonly protocol: OtlpProtocol;
      /** Full URL (with /v1/traces for HTTP); the exporter's default (localhost) when absent. */
      readonly url?: string;
    }
  | { readonly kind: "console" };

/**
 * Builds the exporter, loading its module only now: with tracing off (the default) the OTLP
 * clients are never loaded at all. Headers, certificates, compression and timeouts are read by
 * the exporters themselves from the standard OTEL_EXPORTER_OTLP_* variables.
 */
export async function createSpanExporter(spec: ExporterSpec): Promise<SpanExporter> {
  if (spec.kind === "console") {
    const { ConsoleSpanExporter } = await import("@opentelemetry/sdk-trace-base");
    return new ConsoleSpanExporter();
  }
  const config = spec.url === undefined ? {} : { url: spec.url };
  switch (spec.protocol) {
    case "grpc": {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-grpc");
      return new OTLPTraceExporter(config);
    }
    case "http/json": {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
      return new OTLPTraceExporter(config);
    }
    case "http/protobuf": {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
      return new OTLPTraceExporter(config);
    }
  }
}
