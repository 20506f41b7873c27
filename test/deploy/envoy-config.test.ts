import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadPolicyFile, type Policy } from "../../src/access/policy.js";
import { SETTINGS } from "../../src/config/settings.js";
import { HEALTH_SERVICES } from "../../src/transport/health.js";
import { checkBootstrap, type EnvoyApi, loadEnvoyApi, parseDuration } from "./envoy-api.js";

/**
 * No Envoy binary runs here, so envoy/*.yaml is checked against Envoy's own API definitions
 * (./envoy-api.ts), then against what riskgate expects of the Envoy that calls it.
 */
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const TYPE = "type.googleapis.com/";
const HCM = `${TYPE}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`;
const EXT_AUTHZ = `${TYPE}envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`;
const PER_ROUTE = `${TYPE}envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute`;
const JWT_AUTHN = `${TYPE}envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`;
const OTEL = `${TYPE}envoy.config.trace.v3.OpenTelemetryConfig`;
const H2_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** path_with_escaped_slashes_action values that never pass %2F or %5C on as they are. */
const ESCAPED_SLASHES_HANDLED = ["UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD", "REJECT_REQUEST"];

const CONFIGS = readdirSync("envoy")
  .filter((f) => f.endsWith(".yaml"))
  .sort();
const load = (file: string): Obj => parse(readFileSync(join("envoy", file), "utf8")) as Obj;

/** Every object in `value` whose `@type` is `type`. */
function typed(value: unknown, type: string, out: Obj[] = []): Obj[] {
  if (Array.isArray(value)) for (const v of value) typed(v, type, out);
  else if (isObj(value)) {
    if (value["@type"] === type) out.push(value);
    for (const v of Object.values(value)) typed(v, type, out);
  }
  return out;
}

const at = (value: unknown, ...keys: (string | number)[]): unknown =>
  keys.reduce<unknown>((v, k) => (isObj(v) || Array.isArray(v) ? (v as Obj)[k] : undefined), value);

function clusterOf(config: Obj, name: unknown): Obj | undefined {
  const clusters = at(config, "static_resources", "clusters") as Obj[];
  return clusters.find((c) => c.name === name);
}

const seconds = (d: unknown) => {
  const parsed = parseDuration(String(d));
  return parsed === undefined ? Number.NaN : parsed.seconds + parsed.nanos / 1e9;
};

let api: EnvoyApi;
let demo: Policy;
beforeAll(async () => {
  api = loadEnvoyApi();
  demo = await loadPolicyFile("policies/demo.yaml");
});

describe("Envoy configs against Envoy's own API", () => {
  it("finds the configs and the API they are checked against", () => {
    expect(CONFIGS).toEqual(["envoy.yaml", "sidecar.yaml"]);
    expect(api.root.lookupType("envoy.config.bootstrap.v3.Bootstrap").fields).toHaveProperty(
      "static_resources",
    );
    // left out: v2 files and the few v3 ones importing protos not shipped (opencensus, OTLP)
    for (const file of api.skipped) {
      expect(file).toMatch(
        /\/v2(alpha)?\/|\/v3\/(opencensus|trace|logs_service|metrics_service|trace_service)\.proto$|\/(retry|filter)\//,
      );
    }
  });

  it.each(CONFIGS)("%s: every field known, every @type resolves and decodes", (file) => {
    const result = checkBootstrap(api, load(file));
    expect(result.issues).toEqual([]);
    expect(result.binary?.length).toBeGreaterThan(500);
    expect(result.anyTypes).toEqual(
      expect.arrayContaining([
        HCM.slice(TYPE.length),
        EXT_AUTHZ.slice(TYPE.length),
        PER_ROUTE.slice(TYPE.length),
        OTEL.slice(TYPE.length),
      ]),
    );
  });

  it("fails on a typo or a dangling name, at any depth, with its path", () => {
    const text = readFileSync("envoy/envoy.yaml", "utf8");
    const mutate = (from: string, to: string) => {
      expect(text, `the config contains ${from}`).toContain(from);
      return checkBootstrap(api, parse(text.replace(from, to))).issues.map(
        (i) => `${i.path}: ${i.message}`,
      );
    };
    const filter = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
    expect(mutate("failure_mode_allow:", "failure_mode_alow:")).toEqual([
      `${filter}.http_filters[1].typed_config.failure_mode_alow: unknown field of envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`,
    ]);
    // inside an Any inside a map inside a cluster
    expect(mutate("connection_keepalive:", "connection_keepalve:")).toEqual([
      `static_resources.clusters[0].typed_extension_protocol_options.${H2_OPTIONS}.explicit_http_config.http2_protocol_options.connection_keepalve: unknown field of envoy.config.core.v3.Http2ProtocolOptions`,
    ]);
    const unknownType = mutate("ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuth\n");
    expect(unknownType).toHaveLength(1);
    expect(unknownType[0]).toMatch(
      `${filter}.http_filters[1].typed_config.@type: unknown type envoy.extensions.filters.http.ext_authz.v3.ExtAuth: not in Envoy's API as shipped by @grpc/grpc-js-xds`,
    );
    expect(mutate("cluster_name: riskgate }", "cluster_name: riskgat }")).toEqual([
      `${filter}.http_filters[1].typed_config.grpc_service.envoy_grpc.cluster_name: cluster "riskgat" is not defined`,
    ]);
    expect(mutate("lb_policy: LEAST_REQUEST", "lb_policy: LEAST_REQUESTS")[0]).toMatch(
      /^static_resources\.clusters\[0\]\.lb_policy: "LEAST_REQUESTS" is not one of/,
    );
    expect(mutate("timeout: 0.25s", "timeout: 250ms")[0]).toMatch(
      /grpc_service\.timeout: expected a duration like "0\.25s", got "250ms"/,
    );
    expect(mutate("port_value: 9191", "port_value: 99999")[0]).toMatch(/must be <= 65535/);
    expect(
      mutate(
        "route: { cluster: httpbin, prefix_rewrite: /anything/ }",
        "route: { cluster: httpbin, cluster_header: x }",
      )[0],
    ).toMatch(/oneof cluster_specifier already set by cluster/);
    expect(mutate("stat_prefix: ingress", 'stat_prefix: ""')[0]).toMatch(
      /stat_prefix: shorter than 1/,
    );
    expect(mutate("envoy.filters.http.ext_authz:\n", "envoy.filters.http.extauthz:\n")[0]).toMatch(
      /typed_per_filter_config\.envoy\.filters\.http\.extauthz: no HTTP filter named/,
    );
    // the proto3 JSON names are accepted too, as Envoy accepts them
    expect(mutate("stat_prefix: ingress", "statPrefix: ingress")).toEqual([]);
  });
});

describe.each(CONFIGS)("%s pairs with riskgate", (file) => {
  const config = load(file);
  const hcm = typed(config, HCM)[0] as Obj;
  const filters = hcm.http_filters as Obj[];
  const extAuthz = typed(config, EXT_AUTHZ)[0] as Obj;

  it("ext_authz: v3 over gRPC, fail closed, inside Envoy's budget, metadata only", () => {
    expect(typed(config, EXT_AUTHZ)).toHaveLength(1);
    expect(extAuthz).toMatchObject({
      transport_api_version: "V3",
      failure_mode_allow: false,
      include_peer_certificate: true,
      status_on_error: { code: "ServiceUnavailable" },
    });
    expect(extAuthz.with_request_body).toBeUndefined();
    expect(extAuthz.http_service).toBeUndefined();
    const timeout = seconds(at(extAuthz, "grpc_service", "timeout"));
    // inside Envoy's usual 200-250 ms, and longer than riskgate's own budget, so riskgate's
    // failure mode (a decision) wins over Envoy's status_on_error (no decision)
    expect(timeout).toBeLessThanOrEqual(0.25);
    expect(timeout * 1000).toBeGreaterThan(demo.doc.failure.budget_ms);
  });

  it("the riskgate cluster speaks HTTP/2, health-checks riskgate's gRPC service, on its port", () => {
    const cluster = clusterOf(config, at(extAuthz, "grpc_service", "envoy_grpc", "cluster_name"));
    expect(cluster).toBeDefined();
    const http = at(
      cluster,
      "typed_extension_protocol_options",
      H2_OPTIONS,
      "explicit_http_config",
    );
    expect(at(http, "http2_protocol_options")).toBeDefined();
    const service = at(cluster, "health_checks", 0, "grpc_health_check", "service_name");
    expect(HEALTH_SERVICES).toContain(service);
    const port = at(cluster, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint");
    expect(at(port, "address", "socket_address", "port_value")).toBe(
      Number(SETTINGS.grpcAddress.default.split(":")[1]),
    );
  });

  it("routes: health skips the check, riskgate_route names a policy route", () => {
    const routes = (at(hcm, "route_config", "virtual_hosts") as Obj[]).flatMap(
      (vh) => vh.routes as Obj[],
    );
    const perRoute = (r: Obj) => at(r, "typed_per_filter_config", "envoy.filters.http.ext_authz");
    const health = routes.filter((r) => at(r, "match", "path") === "/healthz");
    expect(health).toHaveLength(1);
    for (const r of health) expect(perRoute(r)).toMatchObject({ disabled: true });
    const named = routes
      .map((r) => at(perRoute(r), "check_settings", "context_extensions", "riskgate_route"))
      .filter((n) => n !== undefined);
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(demo.doc.routes.map((r) => r.name)).toContain(name);
    // the catch-all comes last, so it cannot shadow a named route
    expect(at(routes.at(-1), "match", "prefix")).toBe("/");
  });

  it("filters: jwt_authn (if any) before ext_authz, the router last; paths normalised", () => {
    const names = filters.map((f) => f.name);
    expect(names.at(-1)).toBe("envoy.filters.http.router");
    if (names.includes("envoy.filters.http.jwt_authn")) {
      expect(names.indexOf("envoy.filters.http.jwt_authn")).toBeLessThan(
        names.indexOf("envoy.filters.http.ext_authz"),
      );
    }
    expect(hcm).toMatchObject({ normalize_path: true, merge_slashes: true });
    // escaped slashes are unescaped (or refused) before riskgate and the upstream see them
    expect(ESCAPED_SLASHES_HANDLED).toContain(hcm.path_with_escaped_slashes_action);
  });

  it("traces with OpenTelemetry to a cluster that speaks HTTP/2", () => {
    const otel = typed(config, OTEL)[0];
    const cluster = clusterOf(config, at(otel, "grpc_service", "envoy_grpc", "cluster_name"));
    expect(
      at(cluster, "typed_extension_protocol_options", H2_OPTIONS, "explicit_http_config"),
    ).toHaveProperty("http2_protocol_options");
  });
});

describe("envoy.yaml: jwt_authn hands its payload to riskgate", () => {
  it("forwards the verified payload where the policy's jwt_authn source reads it", () => {
    const config = load("envoy.yaml");
    const source = demo.doc.identity.sources.jwt_authn;
    const extAuthz = typed(config, EXT_AUTHZ)[0] as Obj;
    expect(extAuthz.metadata_context_namespaces).toContain(source.namespace);
    const jwt = typed(config, JWT_AUTHN)[0] as Obj;
    const providers = Object.values(jwt.providers as Obj) as Obj[];
    expect(providers.length).toBeGreaterThan(0);
    for (const p of providers) {
      expect(p.payload_in_metadata).toBe(source.key);
      expect(demo.doc.identity.issuers).toContain(p.issuer);
      expect(p.audiences).toEqual(demo.doc.identity.audiences);
    }
    // never rejects on its own: riskgate decides what a missing or bad token gets
    expect(at(jwt, "rules", 0, "requires")).toEqual({ allow_missing_or_failed: {} });
  });
});

describe("envoy.yaml runs as written in docker-compose.yaml", () => {
  const config = load("envoy.yaml");
  const compose = parse(readFileSync("docker-compose.yaml", "utf8")) as Obj;
  const services = compose.services as Record<string, Obj>;
  const env = (service: string) => (services[service]?.environment ?? {}) as Obj;

  it("listens on the published port and mounts the config the file names", () => {
    const port = at(config, "static_resources", "listeners", 0, "address", "socket_address");
    expect(at(port, "port_value")).toBe(8080);
    expect(services.envoy?.ports).toContain("8080:8080");
    expect(services.envoy?.volumes).toContain("./envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro");
    expect(services.envoy?.command).toEqual(
      expect.arrayContaining(["-c", "/etc/envoy/envoy.yaml"]),
    );
  });

  it("every cluster address is a compose service, on a port it serves", () => {
    const clusters = at(config, "static_resources", "clusters") as Obj[];
    const addresses = clusters.map((c) => {
      const socket = at(c, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint");
      return at(socket, "address", "socket_address") as Obj;
    });
    expect(addresses.map((a) => a.address).sort()).toEqual(["httpbin", "jaeger", "riskgate"]);
    for (const a of addresses) expect(Object.keys(services)).toContain(a.address);
    const port = (name: string) => addresses.find((a) => a.address === name)?.port_value;
    expect(String(port("httpbin"))).toBe(env("httpbin").PORT);
    // Jaeger takes OTLP over gRPC on 4317 once OTLP is on
    expect(port("jaeger")).toBe(4317);
    expect(env("jaeger").COLLECTOR_OTLP_ENABLED).toBe("true");
    expect(services.riskgate?.build).toBe(".");
    expect(String(env("riskgate").REDIS_URL)).toMatch(/^redis:\/\/redis:6379/);
    expect(Object.keys(services)).toContain("redis");
  });

  it("jwt_authn reads the dev JWKS riskgate writes, through a shared volume, once riskgate is healthy", () => {
    const jwt = typed(config, JWT_AUTHN)[0] as Obj;
    const files = Object.values(jwt.providers as Obj).map((p) =>
      String(at(p, "local_jwks", "filename")),
    );
    const keysDir = String(env("riskgate").RISKGATE_DEV_KEYS_DIR);
    expect(env("riskgate").RISKGATE_DEV).toBe("true");
    for (const f of files) expect(f).toBe(`${keysDir}/jwks.json`);
    expect(services.riskgate?.volumes).toContain(`dev-keys:${keysDir}`);
    expect(services.envoy?.volumes).toContain(`dev-keys:${keysDir}:ro`);
    expect(at(services.envoy, "depends_on", "riskgate", "condition")).toBe("service_healthy");
    // the image's read-only root: only /tmp and the volume are writable
    expect(services.riskgate?.read_only).toBe(true);
  });
});

describe("sidecar.yaml asks the riskgate container of its own pod", () => {
  it("over loopback on riskgate's gRPC port", () => {
    const config = load("sidecar.yaml");
    const extAuthz = typed(config, EXT_AUTHZ)[0] as Obj;
    const cluster = clusterOf(config, at(extAuthz, "grpc_service", "envoy_grpc", "cluster_name"));
    const socket = at(cluster, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint");
    expect(at(socket, "address", "socket_address")).toEqual({
      address: "127.0.0.1",
      port_value: 9191,
    });
    expect(cluster?.type).toBe("STATIC");
  });
});

describe("envoy/README.md explains every ext_authz setting the configs use", () => {
  it("has a table row for each key set on ext_authz or its per-route config", () => {
    const readme = readFileSync("envoy/README.md", "utf8");
    // the first cell of each table row: the settings it explains, in backticks
    const explained = new Set(
      readme
        .split("\n")
        .filter((l) => l.startsWith("| "))
        .flatMap((l) => [...(l.split("|")[1] ?? "").matchAll(/`([^`]+)`/g)])
        .flatMap((m) => (m[1] as string).split(/[.\s]+/)),
    );
    const keys = new Set<string>();
    for (const file of CONFIGS) {
      const config = load(file);
      for (const k of Object.keys(typed(config, EXT_AUTHZ)[0] ?? {})) keys.add(k);
      for (const perRoute of typed(config, PER_ROUTE))
        for (const k of Object.keys(perRoute)) keys.add(k);
    }
    keys.delete("@type");
    keys.delete("stat_prefix"); // only names Envoy's own stats
    expect(keys.size).toBeGreaterThan(5);
    for (const key of keys) {
      expect(explained.has(key), `envoy/README.md explains ${key}`).toBe(true);
    }
  });
});

describe("Istio: the sidecar that calls riskgate handles escaped slashes too", () => {
  const filter = parse(readFileSync("k8s/istio/path-normalization.yaml", "utf8")) as Obj;
  const authz = parse(readFileSync("k8s/istio/authorization-policy.yaml", "utf8")) as Obj;

  it("merges path_with_escaped_slashes_action into the inbound HTTP connection manager", () => {
    expect(filter).toMatchObject({
      apiVersion: "networking.istio.io/v1alpha3",
      kind: "EnvoyFilter",
      metadata: { namespace: at(authz, "metadata", "namespace") },
      spec: { workloadSelector: { labels: at(authz, "spec", "selector", "matchLabels") } },
    });
    const patches = at(filter, "spec", "configPatches") as Obj[];
    expect(patches).toHaveLength(1);
    const [patch] = patches as [Obj];
    expect(patch).toMatchObject({
      applyTo: "NETWORK_FILTER",
      match: {
        context: "SIDECAR_INBOUND",
        listener: {
          filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } },
        },
      },
      patch: { operation: "MERGE" },
    });
    const value = at(patch, "patch", "value", "typed_config") as Obj;
    expect(value["@type"]).toBe(HCM);
    // every field is one of Envoy's HttpConnectionManager, with a value its enum knows
    const type = api.root.lookupType(HCM.slice(TYPE.length));
    for (const key of Object.keys(value))
      if (key !== "@type") expect(type.fields).toHaveProperty(key);
    const action = value.path_with_escaped_slashes_action as string;
    expect(ESCAPED_SLASHES_HANDLED).toContain(action);
    const actions = type.lookupEnum("PathWithEscapedSlashesAction");
    expect(actions.values).toHaveProperty(action);
  });
});
