import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { RiskgateError } from "../../src/errors.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createSpanExporter } from "../../src/telemetry/span-exporter.js";
import { telemetryOptionsFromEnv } from "../../src/telemetry/telemetry.js";

describe("telemetry options from the environment", () => {
  it("defaults: no tracing, metrics on :9464, audit of every decision with hashed subjects", () => {
    expect(telemetryOptionsFromEnv({})).toEqual({
      tracing: {
        enabled: false,
        serviceName: "riskgate",
        resourceAttributes: {},
        sampler: "parentbased_always_on",
        samplerRatio: 1,
        subjectAttribute: "hash",
      },
      metrics: { enabled: true, address: "0.0.0.0:9464" },
      audit: { enabled: true, allowSampleRate: 1, subject: "hash" },
      subjectHashKey: "",
    });
  });

  it("turns OTLP over HTTP on when an endpoint is set, with the signal path appended", () => {
    const { tracing } = telemetryOptionsFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318/",
      OTEL_SERVICE_NAME: "authz-eu",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.1",
    });
    expect(tracing).toMatchObject({
      enabled: true,
      exporter: { kind: "otlp", protocol: "http/protobuf", url: "http://jaeger:4318/v1/traces" },
      serviceName: "authz-eu",
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.1,
    });
  });

  it("uses a traces endpoint as is, and gRPC endpoints without a path", () => {
    expect(
      telemetryOptionsFromEnv({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://tempo:4318/otlp/v1/traces",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      }).tracing.exporter,
    ).toEqual({ kind: "otlp", protocol: "http/json", url: "https://tempo:4318/otlp/v1/traces" });
    expect(
      telemetryOptionsFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc",
      }).tracing.exporter,
    ).toEqual({ kind: "otlp", protocol: "grpc", url: "http://collector:4317" });
    expect(telemetryOptionsFromEnv({ OTEL_TRACES_EXPORTER: "otlp" }).tracing).toMatchObject({
      enabled: true,
      exporter: { kind: "otlp", protocol: "http/protobuf" },
    });
  });

  it("honours none, console and OTEL_SDK_DISABLED", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318" };
    expect(
      telemetryOptionsFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }).tracing.enabled,
    ).toBe(false);
    expect(
      telemetryOptionsFromEnv({ ...endpoint, OTEL_SDK_DISABLED: "true" }).tracing.enabled,
    ).toBe(false);
    expect(telemetryOptionsFromEnv({ OTEL_TRACES_EXPORTER: "console" }).tracing).toMatchObject({
      enabled: true,
      exporter: { kind: "console" },
    });
  });

  it("takes the service name and attributes from OTEL_RESOURCE_ATTRIBUTES", () => {
    const { tracing } = telemetryOptionsFromEnv({
      OTEL_RESOURCE_ATTRIBUTES: "service.name=gate,deployment.environment.name=prod%20eu,bad",
    });
    expect(tracing.serviceName).toBe("gate");
    expect(tracing.resourceAttributes).toEqual({
      "service.name": "gate",
      "deployment.environment.name": "prod eu",
    });
  });

  it("reads riskgate's own telemetry settings", () => {
    expect(
      telemetryOptionsFromEnv({
        RISKGATE_METRICS_ADDRESS: ":9100",
        RISKGATE_AUDIT_ALLOW_SAMPLE: "0.25",
        RISKGATE_AUDIT_SUBJECT: "plain",
        RISKGATE_AUDIT_FILE: "/var/log/riskgate/audit.log",
        RISKGATE_TRACE_SUBJECT: "off",
        RISKGATE_SUBJECT_SALT: "s3cret",
      }),
    ).toMatchObject({
      tracing: { subjectAttribute: "off" },
      metrics: { enabled: true, address: ":9100" },
      audit: {
        enabled: true,
        allowSampleRate: 0.25,
        subject: "plain",
        file: "/var/log/riskgate/audit.log",
      },
      subjectHashKey: "s3cret",
    });
    expect(
      telemetryOptionsFromEnv({ RISKGATE_METRICS_ADDRESS: "off", RISKGATE_AUDIT: "false" }),
    ).toMatchObject({ metrics: { enabled: false }, audit: { enabled: false } });
  });

  it("rejects what it cannot honour, naming the variable", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ OTEL_TRACES_EXPORTER: "zipkin" }, /^OTEL_TRACES_EXPORTER="zipkin": expected one of/],
      [{ OTEL_TRACES_EXPORTER: "otlp,console" }, /^OTEL_TRACES_EXPORTER=/],
      [
        { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" },
        /^OTEL_EXPORTER_OTLP_PROTOCOL="thrift"/,
      ],
      [{ OTEL_TRACES_SAMPLER: "sometimes" }, /^OTEL_TRACES_SAMPLER="sometimes"/],
      [{ OTEL_TRACES_SAMPLER_ARG: "2" }, /^OTEL_TRACES_SAMPLER_ARG="2": expected a number/],
      [{ RISKGATE_METRICS_ADDRESS: "9464" }, /^RISKGATE_METRICS_ADDRESS="9464"/],
      [{ RISKGATE_AUDIT_ALLOW_SAMPLE: "half" }, /^RISKGATE_AUDIT_ALLOW_SAMPLE="half"/],
    ];
    for (const [env, message] of cases) {
      let caught: unknown;
      try {
        telemetryOptionsFromEnv(env);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(env)).toBeInstanceOf(RiskgateError);
      expect((caught as RiskgateError).code).toBe("RISKGATE_SETTING_INVALID");
      expect((caught as RiskgateError).message).toMatch(message);
    }
  });
});

describe("span exporters", () => {
  it("builds each OTLP transport and the console exporter on demand", async () => {
    for (const protocol of ["http/protobuf", "http/json", "grpc"] as const) {
      const exporter = await createSpanExporter({
        kind: "otlp",
        protocol,
        url: protocol === "grpc" ? "http://127.0.0.1:4317" : "http://127.0.0.1:4318/v1/traces",
      });
      expect(typeof exporter.export).toBe("function");
      await exporter.shutdown();
    }
    const consoleExporter = await createSpanExporter({ kind: "console" });
    expect(consoleExporter.constructor.name).toBe("ConsoleSpanExporter");
  });
});

describe("operational log redaction", () => {
  it("never prints credentials, whether as fields or as headers", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger("info", sink);
    logger.info(
      {
        token: "tok-1",
        err: { token: "tok-2", password: "pw-3" },
        headers: {
          authorization: "Bearer tok-4",
          cookie: "rg_session=tok-5",
          "x-api-key": "tok-6",
          "proxy-authorization": "Basic tok-7",
          accept: "application/json",
        },
        req: { headers: { authorization: "Bearer tok-8", "set-cookie": "a=tok-9" } },
      },
      "something happened",
    );
    const text = lines.join("");
    for (let i = 1; i <= 9; i++) expect(text).not.toContain(`tok-${i}`);
    expect(text).not.toContain("pw-3");
    expect(text).toContain('"accept":"application/json"');
    expect(text).toContain("[redacted]");
  });
});
