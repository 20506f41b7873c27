import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { DestinationStream } from "pino";
import type { ChallengeOutcome } from "../challenge/outcome.js";
import type { BreakerState } from "../circuit-breaker.js";
import { loadSettings, type Settings } from "../config/settings.js";
import { RiskgateError } from "../errors.js";
import { type Audit, createAudit } from "./audit.js";
import type { DecisionEvent, Refusal } from "./decision-event.js";
import type { Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { answerMetricsRequests, type PrimaryChannel } from "./metrics-cluster.js";
import { type MetricsServer, parseListenAddress, serveMetrics } from "./metrics-server.js";
import type { ExporterSpec } from "./span-exporter.js";
import { createSubjectHasher, type SubjectHasher } from "./subject-hash.js";
import type { SamplerName, TraceRef, Tracing } from "./tracing.js";

export type { DecisionEvent, ExporterSpec, SamplerName };

/** Telemetry configuration; {@link telemetryOptionsFromEnv} reads it from the environment. */
export interface TelemetryOptions {
  readonly tracing: {
    readonly enabled: boolean;
    /** A ready exporter (tests: InMemorySpanExporter), or which one to build at start. */
    readonly exporter?: SpanExporter | ExporterSpec;
    /** `service.name` of the spans (default `riskgate`). */
    readonly serviceName?: string;
    /** More resource attributes (OTEL_RESOURCE_ATTRIBUTES). */
    readonly resourceAttributes?: Readonly<Record<string, string>>;
    /** Default `parentbased_always_on`: follow the caller's sampled flag, trace roots. */
    readonly sampler?: SamplerName;
    /** Ratio of the `*traceidratio` samplers (0..1, default 1). */
    readonly samplerRatio?: number;
    /** The subject on spans (`user.id`): not at all, pseudonymised, or as is. */
    readonly subjectAttribute: "off" | "hash" | "plain";
  };
  readonly metrics: {
    readonly enabled: boolean;
    /** `host:port` of GET /metrics (`0.0.0.0:9464`; port 0 in tests); none when absent. */
    readonly address?: string;
  };
  readonly audit: {
    readonly enabled: boolean;
    /** Share (0..1) of allows written; denials, challenges and throttles are always written. */
    readonly allowSampleRate: number;
    /** Subject and org in lines: pseudonymised (HMAC) or as is. */
    readonly subject: "hash" | "plain";
    /** Main destination; stdout (asynchronous) when absent. */
    readonly destination?: DestinationStream;
    /** Optional second destination file (appended). */
    readonly file?: string;
    /** Sampling draw for tests; Math.random by default. */
    readonly random?: () => number;
  };
  /** Key of the HMAC that pseudonymises subjects and orgs on spans and audit lines. */
  readonly subjectHashKey?: string;
}

/** What the server's other parts report besides decisions (all no-ops when metrics are off). */
export interface TelemetryHooks {
  /** One state store round trip (the guarded store's `onCall`). */
  storeCall(ms: number, ok: boolean): void;
  /** The store circuit breaker changed state (the guarded store's `onStateChange`). */
  breakerState(state: BreakerState): void;
  /** The scoring webhook's circuit breaker changed state. */
  webhookBreakerState(state: BreakerState): void;
  /** A JWKS fetch refreshed the keys, or failed (the last good keys stay). */
  jwks(event: "refresh" | "failure"): void;
  /** A JWT's signature was checked (a cache miss): verified, or refused. */
  tokenVerification(ok: boolean): void;
  /** A policy reload applied, or failed (the last good policy stays). */
  policyReload(ok: boolean): void;
  /** A Check arrived (+1) or was answered (-1). */
  inflight(delta: 1 | -1): void;
  /** One step of a browser challenge: issued, passed, or why an answer was refused. */
  challenge(mechanism: string, outcome: ChallengeOutcome): void;
  /** A Check answered without a decision: shed (overloaded), or its caller had gone. */
  refused(why: Refusal, transport: "grpc" | "http"): void;
}

/** Tracing, metrics and audit behind one observer the server calls after each answer. */
export interface Telemetry extends TelemetryHooks {
  /** Records one decision everywhere that is on. Never throws. */
  onDecision(event: DecisionEvent): void;
  /** Bound port of /metrics once started (undefined when not served). */
  readonly metricsPort: number | undefined;
  /** Builds the tracer (loading the SDK only when tracing is on) and serves /metrics. */
  start(): Promise<void>;
  /** Exports buffered spans and writes buffered audit lines. */
  flush(): Promise<void>;
  /** Flushes spans and audit lines, closes the metrics server. */
  shutdown(): Promise<void>;
}

export interface TelemetryDeps {
  readonly logger: Logger;
  /**
   * In a `--workers` cluster worker: the IPC channel to the primary (`process`). Metrics are
   * then answered to the primary, which serves the merged /metrics, instead of being served here.
   */
  readonly primary?: PrimaryChannel;
}

/** A telemetry part failing is logged for the 1st time, then once per this many failures. */
const LOG_EVERY_FAILURES = 10_000;

/**
 * How long shutdown waits for the last spans and audit lines: an unreachable collector must not
 * hold a draining pod past its grace period (the OTLP exporter retries for up to 10 s).
 */
const SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * Builds tracing, metrics and the audit log from explicit options. Nothing global is
 * registered (own tracer provider, propagators and Prometheus registry), so several instances
 * can live in one process; nothing is exported or served until `start()`. Each decision is
 * observed after its answer was sent; a failing part is logged (the first failure, then one in
 * 10,000 with the count), never thrown.
 */
export function createTelemetry(options: TelemetryOptions, deps: TelemetryDeps): Telemetry {
  const { logger } = deps;
  const hash = createSubjectHasher(options.subjectHashKey ?? "");
  const metrics: Metrics | undefined = options.metrics.enabled ? createMetrics() : undefined;
  const audit = auditOf(options, hash, metrics);
  let tracing: Tracing | undefined;
  let server: MetricsServer | undefined;
  let detachPrimary: (() => void) | undefined;
  let started: Promise<void> | undefined;
  let failures = 0;

  const failed = (part: string, err: unknown) => {
    if (failures++ % LOG_EVERY_FAILURES === 0) {
      logger.error({ err, part, failures }, "telemetry failed to record a decision");
    }
  };
  const hooks = hooksOf(metrics);

  async function startOnce(): Promise<void> {
    warnOnUnkeyedHashing(options, logger);
    tracing = await startTracing(options, hash);
    if (metrics !== undefined && deps.primary !== undefined) {
      detachPrimary = answerMetricsRequests(metrics.registry, deps.primary);
    } else if (metrics !== undefined && options.metrics.address !== undefined) {
      const registry = metrics.registry;
      server = await serveMetrics(options.metrics.address, async () => ({
        contentType: registry.contentType,
        body: await registry.metrics(),
      }));
      logger.info(
        { address: options.metrics.address, metrics_port: server.port },
        "metrics on /metrics",
      );
    }
  }

  return {
    ...hooks,
    get metricsPort() {
      return server?.port;
    },
    onDecision(event) {
      if (metrics !== undefined) {
        try {
          metrics.decision(event);
        } catch (err) {
          failed("metrics", err);
        }
      }
      let traced: TraceRef | undefined;
      if (tracing !== undefined) {
        try {
          traced = tracing.record(event);
        } catch (err) {
          failed("tracing", err);
        }
      }
      if (audit !== undefined) {
        try {
          audit.record(event, traced);
        } catch (err) {
          failed("audit", err);
        }
      }
    },
    start() {
      started ??= startOnce();
      return started;
    },
    async flush() {
      await Promise.all([tracing?.forceFlush(), audit?.flush()]);
    },
    async shutdown() {
      detachPrimary?.();
      await settleWithin(logger, [tracing?.shutdown(), audit?.close(), server?.close()]);
    },
  };
}

/** The audit log when it is on, its drops counted by the metrics. */
function auditOf(
  options: TelemetryOptions,
  hash: SubjectHasher,
  metrics: Metrics | undefined,
): Audit | undefined {
  return options.audit.enabled
    ? createAudit({
        allowSampleRate: options.audit.allowSampleRate,
        subject: options.audit.subject,
        hash,
        ...(options.audit.destination ? { destination: options.audit.destination } : {}),
        ...(options.audit.file ? { file: options.audit.file } : {}),
        ...(options.audit.random ? { random: options.audit.random } : {}),
        ...(metrics ? { onDrop: metrics.auditDropped } : {}),
      })
    : undefined;
}

/** The metrics hooks other parts call, or no-ops when metrics are off. */
function hooksOf(metrics: Metrics | undefined): TelemetryHooks {
  const noop = () => {};
  return metrics
    ? {
        storeCall: metrics.storeCall,
        breakerState: metrics.breakerState,
        webhookBreakerState: metrics.webhookBreakerState,
        jwks: metrics.jwks,
        tokenVerification: metrics.tokenVerification,
        policyReload: metrics.policyReload,
        inflight: metrics.inflight,
        challenge: metrics.challenge,
        refused: metrics.refused,
      }
    : {
        storeCall: noop,
        breakerState: noop,
        webhookBreakerState: noop,
        jwks: noop,
        tokenVerification: noop,
        policyReload: noop,
        inflight: noop,
        challenge: noop,
        refused: noop,
      };
}

/** Warns when subjects are hashed without a secret key (a guessed id can be checked). */
function warnOnUnkeyedHashing(options: TelemetryOptions, logger: Logger): void {
  const tracingOn = options.tracing.enabled && options.tracing.exporter !== undefined;
  const hashing =
    (tracingOn && options.tracing.subjectAttribute === "hash") ||
    (options.audit.enabled && options.audit.subject === "hash");
  if (hashing && !options.subjectHashKey) {
    logger.warn(
      "subjects are pseudonymised without a key: set RISKGATE_SUBJECT_SALT to a secret, or guessed ids can be checked against the hashes",
    );
  }
}

/** Tracing when it is on; the SDK and the exporter are loaded only then. */
async function startTracing(
  options: TelemetryOptions,
  hash: SubjectHasher,
): Promise<Tracing | undefined> {
  if (!options.tracing.enabled || options.tracing.exporter === undefined) return undefined;
  const [{ createTracing }, exporter] = await Promise.all([
    import("./tracing.js"),
    exporterOf(options.tracing.exporter),
  ]);
  return createTracing({
    exporter,
    serviceName: options.tracing.serviceName ?? "riskgate",
    ...(options.tracing.resourceAttributes
      ? { resourceAttributes: options.tracing.resourceAttributes }
      : {}),
    sampler: options.tracing.sampler ?? "parentbased_always_on",
    ratio: options.tracing.samplerRatio ?? 1,
    subjectAttribute: options.tracing.subjectAttribute,
    hash,
    // the console exporter is for watching spans as they happen
    simple: isSpec(options.tracing.exporter) && options.tracing.exporter.kind === "console",
  });
}

/** Waits for the shutdown steps, at most SHUTDOWN_TIMEOUT_MS; failures are logged. */
async function settleWithin(logger: Logger, steps: readonly unknown[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const settled = Promise.allSettled(steps);
  const gaveUp = new Promise<"timeout">((resolve) => {
    timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS, "timeout");
    timer.unref();
  });
  const results = await Promise.race([settled, gaveUp]);
  clearTimeout(timer);
  if (results === "timeout") {
    logger.warn(
      { timeoutMs: SHUTDOWN_TIMEOUT_MS },
      "telemetry shutdown timed out; spans may be lost",
    );
    return;
  }
  for (const r of results) {
    if (r.status === "rejected") logger.warn({ err: r.reason }, "telemetry shutdown step failed");
  }
}

function isSpec(exporter: SpanExporter | ExporterSpec | undefined): exporter is ExporterSpec {
  return exporter !== undefined && !("export" in exporter);
}

async function exporterOf(exporter: SpanExporter | ExporterSpec): Promise<SpanExporter> {
  if (!isSpec(exporter)) return exporter;
  const { createSpanExporter } = await import("./span-exporter.js");
  return createSpanExporter(exporter);
}

/**
 * Telemetry options from the environment: riskgate's own settings (RISKGATE_METRICS_ADDRESS,
 * RISKGATE_AUDIT*, RISKGATE_TRACE_SUBJECT, RISKGATE_SUBJECT_SALT) and the standard OpenTelemetry
 * variables, all read by the settings table. Throws RISKGATE_SETTING_INVALID naming the variable.
 */
export function telemetryOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): TelemetryOptions {
  return telemetryOptions(loadSettings(env));
}

/**
 * Telemetry options of loaded settings (with CLI overrides). Tracing is on when
 * OTEL_TRACES_EXPORTER is `otlp` or `console`, or when an OTLP endpoint is set (unlike the SDK
 * default, nothing is sent to localhost unasked); OTEL_SDK_DISABLED=true turns it off.
 */
export function telemetryOptions(settings: Settings): TelemetryOptions {
  const endpoint = settings.otelOtlpEndpoint || undefined;
  const tracesEndpoint = settings.otelOtlpTracesEndpoint || undefined;
  const name = settings.otelTracesExporter || (endpoint || tracesEndpoint ? "otlp" : "none");
  let exporter: ExporterSpec | undefined;
  if (name === "console") {
    exporter = { kind: "console" };
  } else if (name === "otlp") {
    const protocol = settings.otelOtlpTracesProtocol || settings.otelOtlpProtocol;
    const url =
      tracesEndpoint ??
      (endpoint === undefined || protocol === "grpc"
        ? endpoint
        : `${endpoint.replace(/\/+$/, "")}/v1/traces`);
    exporter = { kind: "otlp", protocol, ...(url === undefined ? {} : { url }) };
  }
  const resourceAttributes = settings.otelResourceAttributes;
  const serviceName =
    settings.otelServiceName || (resourceAttributes["service.name"] ?? "riskgate");

  const address = settings.metricsAddress.trim();
  const metricsOn = address !== "" && address !== "off";
  if (metricsOn) {
    try {
      parseListenAddress(address);
    } catch {
      throw new RiskgateError(
        "RISKGATE_SETTING_INVALID",
        `RISKGATE_METRICS_ADDRESS=${JSON.stringify(settings.metricsAddress)}: expected host:port (:9464 for all interfaces) or off`,
        { env: "RISKGATE_METRICS_ADDRESS" },
      );
    }
  }

  return {
    tracing: {
      enabled: exporter !== undefined && !settings.otelSdkDisabled,
      ...(exporter === undefined ? {} : { exporter }),
      serviceName,
      resourceAttributes,
      sampler: settings.otelTracesSampler,
      samplerRatio: settings.otelTracesSamplerArg,
      subjectAttribute: settings.traceSubject,
    },
    metrics: { enabled: metricsOn, ...(metricsOn ? { address } : {}) },
    audit: {
      enabled: settings.audit,
      allowSampleRate: settings.auditAllowSample,
      subject: settings.auditSubject,
      ...(settings.auditFile === "" ? {} : { file: settings.auditFile }),
    },
    subjectHashKey: settings.subjectSalt,
  };
}
