import { RiskgateError } from "../errors.js";
import {
  bool,
  cidrList,
  headerName,
  int,
  keyValues,
  level,
  listenAddress,
  oneOf,
  orUnset,
  otelBool,
  otlpProtocol,
  ratio,
  redisUrl,
  text,
  tracesExporter,
} from "./setting-parsers.js";

/**
 * Process settings: one flat table, every entry an environment variable with a default and a
 * line of documentation. docs/reference/settings.md is kept in step by a test.
 */
interface SettingSpec<T> {
  readonly env: string;
  readonly default: T;
  readonly doc: string;
  readonly parse: (raw: string) => T;
  /** The default as docs/reference/settings.md shows it, when `String(default)` does not say it. */
  readonly docDefault?: string;
  /** The value may hold a credential: an error names the variable, never the value. */
  readonly secret?: boolean;
}

export const SETTINGS = {
  grpcAddress: {
    env: "RISKGATE_GRPC_ADDRESS",
    default: "0.0.0.0:9191",
    doc: "host:port the ext_authz gRPC server (Check + health) listens on.",
    parse: listenAddress(),
  },
  grpcMaxConnectionIdleMs: {
    env: "RISKGATE_GRPC_MAX_CONNECTION_IDLE_MS",
    default: 300_000,
    doc: "A gRPC connection with no call for this long is closed (HTTP/2 GOAWAY; Envoy reconnects when it next needs one), so idle clients do not hold file descriptors; 0 keeps idle connections open.",
    parse: int(0, 86_400_000),
  },
  policyFile: {
    env: "RISKGATE_POLICY",
    default: "policies/demo.yaml",
    doc: "Path of the policy YAML file.",
    parse: text,
  },
  dev: {
    env: "RISKGATE_DEV",
    default: false,
    doc: "Dev mode: trust the local dev signing key (`riskgate token`) when the policy has no identity.jwks.",
    parse: bool,
  },
  devKeysDir: {
    env: "RISKGATE_DEV_KEYS_DIR",
    default: ".riskgate/dev-keys",
    doc: "Folder of the dev signing key pair, generated on first use (git-ignored).",
    parse: text,
  },
  trustedHops: {
    env: "RISKGATE_TRUSTED_HOPS",
    default: 0,
    doc: "Proxies in front of Envoy whose x-forwarded-for entries are trusted; 0 uses Envoy's source address only.",
    parse: int(0, 16),
  },
  httpAddress: {
    env: "RISKGATE_HTTP_ADDRESS",
    default: "",
    docDefault: "off",
    doc: "host:port of the HTTP forward-auth listener (nginx, ingress-nginx, Traefik, Caddy, Envoy HTTP ext_authz; `/healthz`, `/readyz`); unset, off, or `0.0.0.0:9192` with `--dev`; `off` turns it off.",
    parse: listenAddress({ words: ["off"], anyHost: true }),
  },
  httpTrustedProxies: {
    env: "RISKGATE_HTTP_TRUSTED_PROXIES",
    default: cidrList("127.0.0.1,::1"),
    docDefault: "127.0.0.1,::1",
    doc: "Comma-separated addresses or CIDR blocks of the proxies allowed to call the HTTP listener; forward-auth requests from any other peer are refused (403).",
    parse: cidrList,
  },
  httpClientCertHeader: {
    env: "RISKGATE_HTTP_CLIENT_CERT_HEADER",
    default: "",
    docDefault: "unset",
    doc: "Header in which the trusted proxies forward the client certificate they verified: Envoy's `x-forwarded-client-cert` (XFCC) or a URL-encoded PEM (nginx `$ssl_client_escaped_cert`); its URI/DNS names identify mTLS peers on the forward-auth path. The proxy must overwrite any value the client sent. Unset: forward-auth requests carry no peer identity.",
    parse: headerName,
  },
  httpMaxConnections: {
    env: "RISKGATE_HTTP_MAX_CONNECTIONS",
    default: 512,
    doc: "Connections the HTTP listener holds open at once; more are closed as they arrive, so idle HTTP clients cannot take the file descriptors the gRPC listener needs (keep it well under the process's `nofile` limit). Proxies keep a few keep-alive connections each.",
    parse: int(1, 1_000_000),
  },
  httpKeepAliveTimeoutMs: {
    env: "RISKGATE_HTTP_KEEP_ALIVE_TIMEOUT_MS",
    default: 65_000,
    doc: "How long an idle HTTP keep-alive connection stays open; longer than the proxies' own upstream idle timeout (nginx 60 s), so a proxy never reuses a connection riskgate is closing.",
    parse: int(1000, 600_000),
  },
  clearanceKeysFile: {
    env: "RISKGATE_CLEARANCE_KEYS_FILE",
    default: "",
    docDefault: "unset",
    doc: "JWK Set file of `oct` keys (with `kid`, at least 32 bytes) signing browser challenges and clearance cookies; the first key signs, all verify (rotation). Unset: `--dev` makes one in RISKGATE_DEV_KEYS_DIR, otherwise interactive challenges are refused at start.",
    parse: text,
  },
  captchaSecretFile: {
    env: "RISKGATE_CAPTCHA_SECRET_FILE",
    default: "",
    docDefault: "unset",
    doc: "File holding the CAPTCHA provider's secret key, sent to its siteverify; unset: CAPTCHA answers cannot be verified and the route's failure mode decides.",
    parse: text,
  },
  logLevel: {
    env: "RISKGATE_LOG_LEVEL",
    default: "info",
    doc: "pino log level of the operational log.",
    parse: level,
  },
  shutdownGraceMs: {
    env: "RISKGATE_SHUTDOWN_GRACE_MS",
    default: 10_000,
    doc: "On SIGTERM/SIGINT, how long in-flight checks may take to finish before the server is forced down.",
    parse: int(0, 600_000),
  },
  drainDelayMs: {
    env: "RISKGATE_DRAIN_DELAY_MS",
    default: 5000,
    doc: "On SIGTERM/SIGINT, how long health reports NOT_SERVING while Checks are still answered (so load balancers and Envoy move away) before the port closes.",
    parse: int(0, 600_000),
  },
  maxInFlight: {
    env: "RISKGATE_MAX_IN_FLIGHT",
    default: 256,
    doc: "Checks (gRPC and HTTP together) decided at once per process; above it a Check is answered at once with gRPC RESOURCE_EXHAUSTED or HTTP 503 + Retry-After (counted in riskgate_checks_shed_total) rather than queued past the time budget; 0 turns shedding off. 256 is about half the 100 ms budget at the 5,000 Check/s one process decides with Redis.",
    parse: int(0, 100_000),
  },
  geo: {
    env: "RISKGATE_GEO",
    default: "embedded",
    doc: "Geolocation: `embedded` (bundled DB-IP City Lite and ip-location-db ASN data), `files` (RISKGATE_GEO_CITY_FILES / _ASN_FILES) or `off`.",
    parse: oneOf("embedded", "files", "off"),
  },
  geoCityFiles: {
    env: "RISKGATE_GEO_CITY_FILES",
    default: "",
    doc: "Comma-separated City/Country mmdb files (GeoIP2/GeoLite2 City, DB-IP) when RISKGATE_GEO=files.",
    parse: text,
  },
  geoAsnFiles: {
    env: "RISKGATE_GEO_ASN_FILES",
    default: "",
    doc: "Comma-separated ASN mmdb files (GeoLite2-ASN, DB-IP ASN): the hosting_asn signal's data with RISKGATE_GEO=files; with `embedded` they replace the bundled ASN table.",
    parse: text,
  },
  geoCacheSize: {
    env: "RISKGATE_GEO_CACHE_SIZE",
    default: 10_000,
    doc: "Client IPs whose location is kept decoded (LRU); 0 turns the cache off.",
    parse: int(0, 10_000_000),
  },
  redisUrl: {
    env: "REDIS_URL",
    default: "",
    doc: "Redis for shared state (`redis://[user:pass@]host:port/db`, `rediss://` for TLS); empty uses the embedded in-memory store.",
    parse: redisUrl,
    secret: true,
  },
  redisClusterNodes: {
    env: "RISKGATE_REDIS_CLUSTER_NODES",
    default: "",
    doc: "Comma-separated Redis Cluster seed nodes (host:port); credentials and TLS come from REDIS_URL.",
    parse: text,
  },
  redisSentinels: {
    env: "RISKGATE_REDIS_SENTINELS",
    default: "",
    doc: "Comma-separated Redis Sentinel nodes (host:port); credentials and TLS come from REDIS_URL.",
    parse: text,
  },
  redisSentinelName: {
    env: "RISKGATE_REDIS_SENTINEL_NAME",
    default: "mymaster",
    doc: "The master name Sentinel knows.",
    parse: text,
  },
  redisPassword: {
    env: "RISKGATE_REDIS_PASSWORD",
    default: "",
    doc: "Redis password; overrides the one in REDIS_URL, so it can come from its own secret.",
    parse: text,
  },
  redisTlsCaFile: {
    env: "RISKGATE_REDIS_TLS_CA_FILE",
    default: "",
    doc: "PEM file of a private CA that signed Redis's certificate; turns TLS on.",
    parse: text,
  },
  redisSentinelPassword: {
    env: "RISKGATE_REDIS_SENTINEL_PASSWORD",
    default: "",
    doc: "Password of the Sentinels themselves.",
    parse: text,
  },
  redisAutoPipelining: {
    env: "RISKGATE_REDIS_AUTO_PIPELINING",
    default: false,
    doc: "ioredis auto-pipelining (off: under load it queues each Check's script behind the previous batch's reply); see docs/state.md.",
    parse: bool,
  },
  redisKeyPrefix: {
    env: "RISKGATE_REDIS_KEY_PREFIX",
    default: "rg:",
    doc: "Prefix of every Redis key riskgate writes.",
    parse: text,
  },
  storeTimeoutMs: {
    env: "RISKGATE_STORE_TIMEOUT_MS",
    default: 50,
    doc: "Timeout of one store round trip; a reply that arrived while the event loop was busy still counts. Past it the failure mode decides.",
    parse: int(1, 10_000),
  },
  storeBreakerFailures: {
    env: "RISKGATE_STORE_BREAKER_FAILURES",
    default: 5,
    doc: "Consecutive store failures that open the circuit breaker (calls then fail at once); calls in flight together count once.",
    parse: int(1, 1000),
  },
  storeBreakerResetMs: {
    env: "RISKGATE_STORE_BREAKER_RESET_MS",
    default: 1000,
    doc: "How long the breaker stays open before one probe call tries the store again.",
    parse: int(1, 600_000),
  },
  workers: {
    env: "RISKGATE_WORKERS",
    default: 1,
    doc: "Server processes sharing the gRPC port (node:cluster); use the machine's cores on a VM. On Kubernetes prefer 1 and more replicas.",
    parse: int(1, 256),
  },
  metricsAddress: {
    env: "RISKGATE_METRICS_ADDRESS",
    default: "0.0.0.0:9464",
    doc: "host:port of the Prometheus endpoint (GET /metrics); `off` turns it off.",
    parse: listenAddress({ words: ["off"], anyHost: true }),
  },
  audit: {
    env: "RISKGATE_AUDIT",
    default: true,
    doc: "One audit line per decision (JSON on stdout, asynchronous).",
    parse: bool,
  },
  auditAllowSample: {
    env: "RISKGATE_AUDIT_ALLOW_SAMPLE",
    default: 1,
    doc: "Share (0..1) of allow decisions written to the audit log; denials, challenges and throttles are always written.",
    parse: ratio,
  },
  auditFile: {
    env: "RISKGATE_AUDIT_FILE",
    default: "",
    doc: "A second audit destination file (appended), besides stdout.",
    parse: text,
  },
  auditSubject: {
    env: "RISKGATE_AUDIT_SUBJECT",
    default: "hash",
    doc: "Subject and org in audit lines: `hash` (HMAC-SHA256 keyed with RISKGATE_SUBJECT_SALT) or `plain`.",
    parse: oneOf("hash", "plain"),
  },
  traceSubject: {
    env: "RISKGATE_TRACE_SUBJECT",
    default: "hash",
    doc: "Subject on spans (enduser.id): `off`, `hash` or `plain`. Tracing itself follows the standard OTEL_* variables.",
    parse: oneOf("off", "hash", "plain"),
  },
  subjectSalt: {
    env: "RISKGATE_SUBJECT_SALT",
    default: "",
    doc: "Key of the HMAC that pseudonymises subjects and orgs in spans and audit lines (set a secret one in production).",
    parse: text,
  },
  otelTracesExporter: {
    env: "OTEL_TRACES_EXPORTER",
    default: "",
    doc: "Span exporter: `otlp`, `console` (spans printed as they end) or `none`; unset, `otlp` when an OTLP endpoint is set, else none.",
    parse: tracesExporter,
  },
  otelOtlpEndpoint: {
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    default: "",
    doc: "OTLP base URL; `/v1/traces` is appended for HTTP (`http://jaeger:4318`), used as is for gRPC (`http://jaeger:4317`).",
    parse: text,
  },
  otelOtlpTracesEndpoint: {
    env: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    default: "",
    doc: "Full URL of the OTLP traces endpoint, used as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT).",
    parse: text,
  },
  otelOtlpProtocol: {
    env: "OTEL_EXPORTER_OTLP_PROTOCOL",
    default: "http/protobuf",
    doc: "OTLP transport: `http/protobuf`, `http/json` or `grpc`.",
    parse: otlpProtocol,
  },
  otelOtlpTracesProtocol: {
    env: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    default: "",
    doc: "OTLP transport of traces; wins over OTEL_EXPORTER_OTLP_PROTOCOL.",
    parse: orUnset(otlpProtocol),
  },
  otelTracesSampler: {
    env: "OTEL_TRACES_SAMPLER",
    default: "parentbased_always_on",
    doc: "Sampler: `parentbased_always_on`, `parentbased_traceidratio`, `parentbased_always_off`, `always_on`, `always_off` or `traceidratio`.",
    parse: oneOf(
      "always_on",
      "always_off",
      "traceidratio",
      "parentbased_always_on",
      "parentbased_always_off",
      "parentbased_traceidratio",
    ),
  },
  otelTracesSamplerArg: {
    env: "OTEL_TRACES_SAMPLER_ARG",
    default: 1,
    doc: "Ratio (0..1) of the `*traceidratio` samplers.",
    parse: ratio,
  },
  otelServiceName: {
    env: "OTEL_SERVICE_NAME",
    default: "",
    doc: "`service.name` of the spans; unset, the one in OTEL_RESOURCE_ATTRIBUTES, else `riskgate`.",
    parse: text,
  },
  otelResourceAttributes: {
    env: "OTEL_RESOURCE_ATTRIBUTES",
    default: Object.freeze({}) as Readonly<Record<string, string>>,
    docDefault: "",
    doc: "More resource attributes of the spans: `key=value,...`, values percent-encoded.",
    parse: keyValues,
  },
  otelSdkDisabled: {
    env: "OTEL_SDK_DISABLED",
    default: false,
    doc: "`true` turns tracing off whatever else is set.",
    parse: otelBool,
  },
} as const satisfies Record<string, SettingSpec<unknown>>;

type Specs = typeof SETTINGS;
/** The parsed settings, frozen. */
export type Settings = { readonly [K in keyof Specs]: ReturnType<Specs[K]["parse"]> };

/** A value given on the command line for a setting: the raw text and the flag that gave it. */
export interface SettingFlag {
  readonly flag: string;
  readonly raw: string;
}

/**
 * Reads every setting from `env`; throws RISKGATE_SETTING_INVALID naming the variable. `flags`
 * (command-line overrides) go through the same parsers and win over the environment; an error
 * names the flag and the variable.
 */
export function loadSettings(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<Settings> = {},
  flags: Partial<Record<keyof Specs, SettingFlag>> = {},
): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SETTINGS) as [keyof Specs, SettingSpec<unknown>][]) {
    const flag = flags[key];
    const raw = flag?.raw ?? env[spec.env];
    if (raw === undefined || raw === "") {
      out[key] = spec.default;
      continue;
    }
    try {
      out[key] = spec.parse(raw.trim());
    } catch (err) {
      const source = flag === undefined ? spec.env : `${flag.flag} (${spec.env})`;
      const shown = spec.secret === true ? "" : `=${JSON.stringify(raw)}`;
      throw new RiskgateError(
        "RISKGATE_SETTING_INVALID",
        `${source}${shown}: ${(err as Error).message}`,
        { env: spec.env, ...(flag === undefined ? {} : { flag: flag.flag }) },
      );
    }
  }
  return Object.freeze({ ...(out as Settings), ...overrides });
}
