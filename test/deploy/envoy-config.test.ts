import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

/**
 * No Envoy binary can run here, so envoy/*.yaml is checked against Envoy's own API definitions:
 * the protos @grpc/grpc-js-xds ships (envoy-api, xds/udpa, validate, googleapis). Every key
 * must be a field of its message, every `@type` must resolve, and every cluster a filter or a
 * route names must exist. A typo fails with its path.
 */
const DEPS = "node_modules/@grpc/grpc-js-xds/deps";
const INCLUDE = [
  ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(DEPS, d)),
  "node_modules/protobufjs", // google/protobuf/descriptor.proto, which the annotations import
];
const FILES = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
  "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/config/trace/v3/opentelemetry.proto",
  "envoy/extensions/access_loggers/stream/v3/stream.proto",
];

function loadEnvoyApi(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of INCLUDE) {
      const path = join(dir, target);
      if (existsSync(path)) return path;
    }
    return target; // the other google/protobuf/* types are bundled with protobufjs
  };
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

/** Free-form or scalar-like well-known types: anything the JSON mapping allows is fine. */
const OPAQUE = new Set([
  ".google.protobuf.Struct",
  ".google.protobuf.Value",
  ".google.protobuf.ListValue",
  ".google.protobuf.Duration",
  ".google.protobuf.Timestamp",
  ".google.protobuf.FieldMask",
  ".google.protobuf.BoolValue",
  ".google.protobuf.UInt32Value",
  ".google.protobuf.UInt64Value",
  ".google.protobuf.Int32Value",
  ".google.protobuf.Int64Value",
  ".google.protobuf.DoubleValue",
  ".google.protobuf.FloatValue",
  ".google.protobuf.StringValue",
  ".google.protobuf.BytesValue",
]);

/** Walks a YAML value against a message type; returns the problems with their paths. */
function check(root: protobuf.Root, type: protobuf.Type, value: unknown, path: string): string[] {
  if (OPAQUE.has(type.fullName)) return [];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return [`${path}: expected an object for ${type.fullName}`];
  }
  const obj = value as Record<string, unknown>;
  if (type.fullName === ".google.protobuf.Any") {
    const url = obj["@type"];
    if (typeof url !== "string") return [`${path}: Any without @type`];
    const name = url.slice(url.lastIndexOf("/") + 1);
    let inner: protobuf.Type;
    try {
      inner = root.lookupType(name);
    } catch {
      return [`${path}.@type: unknown type ${name}`];
    }
    const { "@type": _t, ...rest } = obj;
    return check(root, inner, rest, path);
  }
  const problems: string[] = [];
  for (const [key, v] of Object.entries(obj)) {
    const field =
      type.fields[key] ?? Object.values(type.fields).find((f) => f.options?.json_name === key);
    if (field === undefined) {
      problems.push(`${path}.${key}: not a field of ${type.fullName}`);
      continue;
    }
    const where = `${path}.${key}`;
    const resolved = field.resolvedType;
    const each = (item: unknown, p: string) => {
      if (resolved instanceof protobuf.Type) problems.push(...check(root, resolved, item, p));
      else if (resolved instanceof protobuf.Enum) {
        if (typeof item === "string" && !(item in resolved.values))
          problems.push(`${p}: ${item} is not a ${resolved.name}`);
      }
    };
    if (field.map) {
      if (v === null || typeof v !== "object") problems.push(`${where}: expected a map`);
      else for (const [k, item] of Object.entries(v)) each(item, `${where}.${k}`);
    } else if (field.repeated) {
      if (!Array.isArray(v)) problems.push(`${where}: expected a list`);
      else
        v.forEach((item, i) => {
          each(item, `${where}[${i}]`);
        });
    } else {
      each(v, where);
    }
  }
  return problems;
}

/** Cluster names referenced anywhere (envoy_grpc.cluster_name, route.cluster, http_uri.cluster). */
function referencedClusters(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) referencedClusters(v, out);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if ((k === "cluster_name" || k === "cluster") && typeof v === "string") out.add(v);
      else referencedClusters(v, out);
    }
  }
  return out;
}

const root = loadEnvoyApi();
const bootstrap = root.lookupType("envoy.config.bootstrap.v3.Bootstrap");
const configs = readdirSync("envoy").filter((f) => f.endsWith(".yaml"));

describe("Envoy configs against Envoy's API", () => {
  it("finds the configs", () => {
    expect(configs.sort()).toEqual(["envoy.yaml", "sidecar.yaml"]);
  });

  it.each(configs)("%s: every key is a known field, every @type resolves", (file) => {
    const doc = parse(readFileSync(join("envoy", file), "utf8"));
    expect(check(root, bootstrap, doc, file)).toEqual([]);
  });

  it.each(configs)("%s: every cluster a filter or route names exists", (file) => {
    const doc = parse(readFileSync(join("envoy", file), "utf8")) as {
      static_resources: { clusters: { name: string }[]; listeners: unknown };
    };
    const defined = new Set(doc.static_resources.clusters.map((c) => c.name));
    const used = referencedClusters(doc.static_resources.listeners);
    expect([...used].filter((c) => !defined.has(c))).toEqual([]);
  });

  it("sends ext_authz to riskgate as riskgate expects", () => {
    const text = readFileSync("envoy/envoy.yaml", "utf8");
    expect(text).toContain("transport_api_version: V3");
    expect(text).toContain("failure_mode_allow: false");
    expect(text).toContain("metadata_context_namespaces: [envoy.filters.http.jwt_authn]");
    expect(text).toContain("payload_in_metadata: jwt_payload");
    expect(text).toContain("riskgate_route: admin-users");
  });

  it("catches a typo in a field name, with its path", () => {
    const doc = parse(
      readFileSync("envoy/envoy.yaml", "utf8").replace("failure_mode_allow:", "failure_mode_alow:"),
    );
    const problems = check(root, bootstrap, doc, "envoy.yaml");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /http_filters\[1\]\.typed_config\.failure_mode_alow: not a field of \.envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthz/,
    );
    const badType = parse(
      readFileSync("envoy/envoy.yaml", "utf8").replace(
        "ext_authz.v3.ExtAuthz\n",
        "ext_authz.v3.ExtAuth\n",
      ),
    );
    expect(check(root, bootstrap, badType, "envoy.yaml").join("\n")).toContain("unknown type");
  });
});
