import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import protobuf from "protobufjs";

/**
 * A static checker for Envoy bootstrap YAML, built on Envoy's own API definitions (the protos
 * `@grpc/grpc-js-xds` ships: envoy-api, xds/udpa, protoc-gen-validate, googleapis). It reads the
 * config the way Envoy does (proto3 JSON mapping, unknown fields rejected) and reports, with a
 * path: unknown fields (also inside every `typed_config`, resolved by its `@type`), unresolvable
 * `@type`s, wrong value types, unknown enum names, two members of one oneof, the
 * protoc-gen-validate rules Envoy enforces at load that are cheap to check (required messages and
 * oneofs, string min_len, repeated min_items, numeric bounds), deprecated fields, clusters named
 * but not defined, per-route filter configs for filters not in the chain, and an HTTP filter chain
 * that does not end in the router. The result is also encoded to protobuf binary, and every
 * `Any` decoded back with its type.
 */

const DEPS = "node_modules/@grpc/grpc-js-xds/deps";
const INCLUDE = [
  ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(DEPS, d)),
  "node_modules/protobufjs", // google/protobuf/descriptor.proto, imported by the annotations
];

export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

export interface EnvoyApi {
  readonly root: protobuf.Root;
  /** Envoy API files left out because an import of theirs is not shipped (v2, opencensus...). */
  readonly skipped: readonly string[];
}

function resolveImport(target: string): string | undefined {
  for (const dir of INCLUDE) {
    const path = join(dir, target);
    if (existsSync(path)) return path;
  }
  return undefined;
}

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...protoFiles(path));
    else if (entry.endsWith(".proto")) out.push(path);
  }
  return out;
}

/**
 * Loads every Envoy API file whose imports all resolve, so any `@type` a config names can be
 * found. protobufjs bundles google/protobuf/{any,duration,struct,wrappers,...}.
 */
export function loadEnvoyApi(): EnvoyApi {
  const apiDir = join(DEPS, "envoy-api");
  if (!existsSync(join(apiDir, "envoy"))) {
    throw new Error(
      `Envoy's API protos are not at ${apiDir}: install the dev dependency @grpc/grpc-js-xds (npm ci)`,
    );
  }
  const all = protoFiles(join(apiDir, "envoy")).map((f) => relative(apiDir, f));
  const bundled = (name: string) =>
    /^google\/protobuf\/(any|duration|timestamp|empty|struct|wrappers|field_mask)\.proto$/.test(
      name,
    );
  const importsOf = new Map<string, string[]>();
  const imports = (file: string): string[] => {
    let list = importsOf.get(file);
    if (list === undefined) {
      const path = resolveImport(file);
      const text = path === undefined ? "" : readFileSync(path, "utf8");
      list = [...text.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)].map(
        (m) => m[1] as string,
      );
      importsOf.set(file, list);
    }
    return list;
  };
  const loadable = new Map<string, boolean>();
  const canLoad = (file: string, seen = new Set<string>()): boolean => {
    const known = loadable.get(file);
    if (known !== undefined) return known;
    if (seen.has(file)) return true; // a cycle: decided by the other files
    seen.add(file);
    const ok =
      bundled(file) ||
      (resolveImport(file) !== undefined && imports(file).every((i) => canLoad(i, seen)));
    loadable.set(file, ok);
    return ok;
  };
  const files = all.filter((f) => canLoad(f));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => resolveImport(target) ?? target;
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  const skipped = all.filter((f) => !files.includes(f));
  const missing = REQUIRED_TYPES.filter((t) => !(root.lookup(t) instanceof protobuf.Type));
  if (missing.length > 0) {
    // a newer @grpc/grpc-js-xds may move or drop files: say which type, not "undefined"
    throw new Error(
      `Envoy types not found in the protos shipped by @grpc/grpc-js-xds (${apiDir}): ${missing.join(", ")}` +
        (skipped.length > 0 ? `; files left out for unresolved imports: ${skipped.length}` : ""),
    );
  }
  return { root, skipped };
}

/** The types envoy/*.yaml use: the checker cannot say anything without them. */
const REQUIRED_TYPES = [
  "envoy.config.bootstrap.v3.Bootstrap",
  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
  "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
  "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
  "envoy.extensions.filters.http.router.v3.Router",
  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  "envoy.config.trace.v3.OpenTelemetryConfig",
  "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
  "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
];

/** Well-known types whose proto3 JSON form is not an object of their fields. */
const WRAPPERS: Record<string, string> = {
  ".google.protobuf.DoubleValue": "double",
  ".google.protobuf.FloatValue": "float",
  ".google.protobuf.Int64Value": "int64",
  ".google.protobuf.UInt64Value": "uint64",
  ".google.protobuf.Int32Value": "int32",
  ".google.protobuf.UInt32Value": "uint32",
  ".google.protobuf.BoolValue": "bool",
  ".google.protobuf.StringValue": "string",
  ".google.protobuf.BytesValue": "bytes",
};
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  ".google.protobuf.Duration",
  ".google.protobuf.Timestamp",
  ".google.protobuf.FieldMask",
  ".google.protobuf.Struct",
  ".google.protobuf.Value",
  ".google.protobuf.ListValue",
]);
const TYPED_STRUCTS = new Set([".udpa.type.v1.TypedStruct", ".xds.type.v3.TypedStruct"]);

const INT_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};
const INT64 = new Set(["int64", "sint64", "sfixed64", "uint64", "fixed64"]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

const jsonName = (name: string) => name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** Seconds and nanos of a proto3 JSON duration ("0.25s", "-1.5s"), or undefined. */
export function parseDuration(text: string): { seconds: number; nanos: number } | undefined {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (m === null) return undefined;
  const sign = m[1] === "-" ? -1 : 1;
  return {
    seconds: sign * Number(m[2]),
    nanos: sign * Number((m[3] ?? "").padEnd(9, "0")),
  };
}

export interface CheckResult {
  readonly issues: ConfigIssue[];
  /** Every `@type` met, in order. */
  readonly anyTypes: string[];
  /** The config as protobuf binary (when it had no issue). */
  readonly binary?: Uint8Array;
}

interface Walk {
  readonly api: EnvoyApi;
  readonly issues: ConfigIssue[];
  readonly anyTypes: string[];
  readonly clusterRefs: { name: string; path: string }[];
  readonly connectionManagers: { value: Record<string, Json>; path: string }[];
}

const HCM = ".envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "envoy.extensions.filters.http.router.v3.Router";

/** Checks a bootstrap config (as parsed from YAML) against `envoy.config.bootstrap.v3.Bootstrap`. */
export function checkBootstrap(api: EnvoyApi, config: unknown): CheckResult {
  const type = api.root.lookupType("envoy.config.bootstrap.v3.Bootstrap");
  const walk: Walk = {
    api,
    issues: [],
    anyTypes: [],
    clusterRefs: [],
    connectionManagers: [],
  };
  const normalised = message(walk, type, config, "");
  crossCheck(walk, config);
  if (walk.issues.length > 0) return { issues: walk.issues, anyTypes: walk.anyTypes };
  const binary = type.encode(type.fromObject(normalised as Record<string, unknown>)).finish();
  // decode it back, and every Any inside with its own type: what Envoy does with typed_config
  const decoded = type.decode(binary);
  const unpacked = unpackAnys(api.root, decoded);
  if (unpacked !== walk.anyTypes.length) {
    walk.issues.push({
      path: "",
      message: `decoded ${unpacked} Any values, the config has ${walk.anyTypes.length}`,
    });
  }
  return { issues: walk.issues, anyTypes: walk.anyTypes, binary };
}

function issue(walk: Walk, path: string, message: string): undefined {
  walk.issues.push({ path: path === "" ? "(root)" : path, message });
  return undefined;
}

/** Validates `value` as a `type` in JSON form; returns the object protobufjs' fromObject takes. */
function message(walk: Walk, type: protobuf.Type, value: unknown, path: string): unknown {
  const name = type.fullName;
  if (name === ".google.protobuf.Any") return any(walk, value, path);
  if (SPECIAL_JSON.has(name)) return special(walk, name, value, path);
  if (!isObject(value)) return issue(walk, path, `expected an object (${name.slice(1)})`);
  if (name === HCM) walk.connectionManagers.push({ value, path });
  const out: Record<string, unknown> = {};
  const byJson = new Map(type.fieldsArray.map((f) => [jsonName(f.name), f]));
  const setOneofs = new Map<string, string>();
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key] ?? byJson.get(key);
    const where = path === "" ? key : `${path}.${key}`;
    if (field === undefined) {
      issue(walk, where, `unknown field of ${name.slice(1)}`);
      continue;
    }
    if (v === null) continue; // JSON null: the field's default
    field.resolve();
    if (field.options?.deprecated === true) issue(walk, where, "deprecated field");
    if (field.options?.["(envoy.annotations.disallowed_by_default)"] === true)
      issue(walk, where, "field disallowed by default");
    const oneof = field.partOf;
    if (oneof !== null && oneof !== undefined) {
      const other = setOneofs.get(oneof.name);
      if (other !== undefined)
        issue(walk, where, `oneof ${oneof.name} already set by ${other}: set only one`);
      setOneofs.set(oneof.name, key);
    }
    if (field.map) {
      if (!isObject(v)) {
        issue(walk, where, "expected a map (an object)");
        continue;
      }
      const map: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v))
        map[k] = single(walk, field, item, `${where}.${k}`);
      out[field.name] = map;
    } else if (field.repeated) {
      if (!Array.isArray(v)) {
        issue(walk, where, "expected a list");
        continue;
      }
      out[field.name] = v.map((item, i) => single(walk, field, item, `${where}[${i}]`));
      rules(walk, field, v, where);
    } else {
      out[field.name] = single(walk, field, v, where);
      rules(walk, field, v, where);
    }
  }
  required(walk, type, value, path, byJson);
  return out;
}

/** One value of a field (an element when repeated, a value when a map). */
function single(walk: Walk, field: protobuf.Field, value: Json, path: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return message(walk, resolved, value, path);
  if (resolved instanceof protobuf.Enum) return enumValue(walk, resolved, value, path);
  return scalar(walk, field.type, value, path);
}

function enumValue(walk: Walk, e: protobuf.Enum, value: Json, path: string): unknown {
  if (typeof value === "number") {
    if (!Object.values(e.values).includes(value))
      return issue(walk, path, `${value} is not a value of ${e.fullName.slice(1)}`);
    return value;
  }
  if (typeof value !== "string" || !(value in e.values)) {
    return issue(
      walk,
      path,
      `${JSON.stringify(value)} is not one of ${e.fullName.slice(1)}: ${Object.keys(e.values).join(", ")}`,
    );
  }
  if (e.valuesOptions?.[value]?.deprecated === true) issue(walk, path, `${value} is deprecated`);
  return value;
}

function scalar(walk: Walk, kind: string, value: Json, path: string): unknown {
  const range = INT_RANGE[kind];
  if (range !== undefined || INT64.has(kind)) {
    const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n))
      return issue(walk, path, `expected an integer (${kind}), got ${JSON.stringify(value)}`);
    if (range !== undefined && (n < range[0] || n > range[1]))
      return issue(walk, path, `${n} is out of the ${kind} range`);
    if (kind.startsWith("u") && n < 0) return issue(walk, path, `${n} is negative (${kind})`);
    return value;
  }
  switch (kind) {
    case "double":
    case "float":
      if (typeof value === "number" || /^(-?Infinity|NaN)$/.test(String(value))) return value;
      return issue(walk, path, `expected a number, got ${JSON.stringify(value)}`);
    case "bool":
      if (typeof value === "boolean") return value;
      return issue(walk, path, `expected true or false, got ${JSON.stringify(value)}`);
    case "string":
      if (typeof value === "string") return value;
      return issue(walk, path, `expected a string, got ${JSON.stringify(value)}`);
    case "bytes":
      if (typeof value === "string" && /^[A-Za-z0-9+/_-]*=*$/.test(value)) return value;
      return issue(walk, path, "expected base64 bytes");
    default:
      return issue(walk, path, `unsupported field type ${kind}`);
  }
}

function any(walk: Walk, value: unknown, path: string): unknown {
  if (!isObject(value)) return issue(walk, path, "expected an object with @type");
  const url = value["@type"];
  if (typeof url !== "string") return issue(walk, path, "Any without @type");
  const typeName = url.slice(url.lastIndexOf("/") + 1);
  const where = `${path}.@type`;
  if (!url.startsWith("type.googleapis.com/"))
    issue(walk, where, "type URLs start with type.googleapis.com/");
  const inner = walk.api.root.lookup(typeName);
  if (!(inner instanceof protobuf.Type)) {
    return issue(
      walk,
      where,
      `unknown type ${typeName}: not in Envoy's API as shipped by @grpc/grpc-js-xds (a typo, or an extension whose protos are not shipped)`,
    );
  }
  if (TYPED_STRUCTS.has(inner.fullName))
    return issue(walk, where, "TypedStruct is not checked here: use the typed message");
  walk.anyTypes.push(typeName);
  const { "@type": _url, ...rest } = value;
  let body: unknown;
  if (SPECIAL_JSON.has(inner.fullName)) {
    body = special(walk, inner.fullName, rest.value, `${path}.value`);
    if (Object.keys(rest).some((k) => k !== "value"))
      issue(walk, path, `${typeName} in an Any takes only "value"`);
  } else {
    body = message(walk, inner, rest, path);
  }
  if (walk.issues.length > 0) return undefined;
  const bytes = inner.encode(inner.fromObject(body as Record<string, unknown>)).finish();
  return { type_url: url, value: bytes };
}

function special(walk: Walk, name: string, value: unknown, path: string): unknown {
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) {
    const v = scalar(walk, wrapped, value as Json, path);
    return v === undefined ? undefined : { value: v };
  }
  switch (name) {
    case ".google.protobuf.Duration": {
      const d = typeof value === "string" ? parseDuration(value) : undefined;
      if (d === undefined)
        return issue(walk, path, `expected a duration like "0.25s", got ${JSON.stringify(value)}`);
      return d;
    }
    case ".google.protobuf.Timestamp": {
      const ms = typeof value === "string" ? Date.parse(value) : Number.NaN;
      if (Number.isNaN(ms)) return issue(walk, path, "expected an RFC 3339 timestamp");
      return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
    }
    case ".google.protobuf.FieldMask":
      if (typeof value !== "string") return issue(walk, path, "expected a field mask string");
      return { paths: value.split(",").filter((p) => p !== "") };
    case ".google.protobuf.Struct":
      if (!isObject(value)) return issue(walk, path, "expected an object (Struct)");
      return structOf(value);
    case ".google.protobuf.ListValue":
      if (!Array.isArray(value)) return issue(walk, path, "expected a list (ListValue)");
      return { values: value.map(protoValue) };
    default:
      return protoValue(value as Json);
  }
}

function structOf(value: Record<string, Json>): unknown {
  return { fields: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, protoValue(v)])) };
}

function protoValue(value: Json): unknown {
  if (value === null) return { null_value: 0 };
  if (typeof value === "number") return { number_value: value };
  if (typeof value === "string") return { string_value: value };
  if (typeof value === "boolean") return { bool_value: value };
  if (Array.isArray(value)) return { list_value: { values: value.map(protoValue) } };
  return { struct_value: structOf(value) };
}

/** protoc-gen-validate rules on a field that is set (string lengths, list sizes, bounds). */
function rules(walk: Walk, field: protobuf.Field, value: Json, path: string): void {
  const o = field.options ?? {};
  const minLen = o["(validate.rules).string.min_len"] ?? o["(validate.rules).string.min_bytes"];
  if (typeof minLen === "number" && typeof value === "string" && value.length < minLen)
    issue(walk, path, `shorter than ${minLen} character(s)`);
  const minItems = o["(validate.rules).repeated.min_items"];
  if (typeof minItems === "number" && Array.isArray(value) && value.length < minItems)
    issue(walk, path, `needs at least ${minItems} item(s)`);
  for (const kind of Object.keys(INT_RANGE).concat([...INT64], ["double", "float"])) {
    if (typeof value !== "number") break;
    const bound = (op: string) => o[`(validate.rules).${kind}.${op}`];
    const [gt, gte, lt, lte] = ["gt", "gte", "lt", "lte"].map(bound);
    if (typeof gt === "number" && !(value > gt)) issue(walk, path, `must be > ${gt}`);
    if (typeof gte === "number" && !(value >= gte)) issue(walk, path, `must be >= ${gte}`);
    if (typeof lt === "number" && !(value < lt)) issue(walk, path, `must be < ${lt}`);
    if (typeof lte === "number" && !(value <= lte)) issue(walk, path, `must be <= ${lte}`);
  }
}

/** Required fields and oneofs (protoc-gen-validate), checked on every message that is present. */
function required(
  walk: Walk,
  type: protobuf.Type,
  value: Record<string, Json>,
  path: string,
  byJson: Map<string, protobuf.Field>,
): void {
  if (type.options?.["(validate.disabled)"] === true) return;
  const present = new Set(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k]) => (type.fields[k] ?? byJson.get(k))?.name),
  );
  const where = (f: string) => (path === "" ? f : `${path}.${f}`);
  for (const field of type.fieldsArray) {
    if (present.has(field.name)) continue;
    const inOneof = field.partOf !== null && field.partOf !== undefined;
    if (inOneof) continue; // validated only when set
    const o = field.options ?? {};
    const requiredMessage = Object.entries(o).some(
      ([k, v]) => /^\(validate\.rules\)\.(message|duration|timestamp|any)\.required$/.test(k) && v,
    );
    const ignoreEmpty = o["(validate.rules).string.ignore_empty"] === true;
    const minLen = o["(validate.rules).string.min_len"] ?? o["(validate.rules).string.min_bytes"];
    const minItems = o["(validate.rules).repeated.min_items"];
    if (requiredMessage) issue(walk, where(field.name), "required field missing");
    else if (typeof minLen === "number" && minLen > 0 && !ignoreEmpty)
      issue(walk, where(field.name), "required field missing (non-empty string)");
    else if (typeof minItems === "number" && minItems > 0)
      issue(walk, where(field.name), `required field missing (at least ${minItems} item(s))`);
  }
  for (const oneof of type.oneofsArray) {
    if (oneof.options?.["(validate.required)"] !== true) continue;
    if (!oneof.fieldsArray.some((f) => present.has(f.name)))
      issue(walk, path, `one of ${oneof.oneof.join(", ")} is required`);
  }
}

/** Clusters named but not defined; per-route configs of absent filters; the router's place. */
function crossCheck(walk: Walk, config: unknown): void {
  if (!isObject(config)) return;
  const resources = isObject(config.static_resources) ? config.static_resources : {};
  const clusters = Array.isArray(resources.clusters) ? resources.clusters : [];
  const defined = new Set(clusters.map((c) => (isObject(c) ? c.name : undefined)));
  collectClusterRefs(walk, config, "");
  for (const ref of walk.clusterRefs) {
    if (!defined.has(ref.name)) issue(walk, ref.path, `cluster "${ref.name}" is not defined`);
  }
  for (const hcm of walk.connectionManagers) {
    const filters = Array.isArray(hcm.value.http_filters) ? hcm.value.http_filters : [];
    const names = new Set<string>();
    filters.forEach((f, i) => {
      if (!isObject(f)) return;
      names.add(String(f.name));
      const typed = isObject(f.typed_config) ? String(f.typed_config["@type"]) : "";
      const last = i === filters.length - 1;
      if (typed.endsWith(ROUTER) !== last) {
        issue(
          walk,
          `${hcm.path}.http_filters[${i}]`,
          last ? "the last HTTP filter must be the router" : "the router must be the last filter",
        );
      }
      if (!isObject(f.typed_config) && f.config_discovery === undefined)
        issue(walk, `${hcm.path}.http_filters[${i}]`, "an HTTP filter needs typed_config");
    });
    perFilterKeys(walk, hcm.value.route_config, `${hcm.path}.route_config`, names);
  }
}

function collectClusterRefs(walk: Walk, value: unknown, path: string): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      collectClusterRefs(walk, v, `${path}[${i}]`);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const where = path === "" ? k : `${path}.${k}`;
    if (path === "" && k === "node") continue; // node.cluster names this Envoy's service cluster
    // a cluster's own name and its load_assignment's name are definitions, not references
    if (k === "clusters" && path === "static_resources") {
      if (Array.isArray(value[k]))
        value[k].forEach((c, i) => {
          if (!isObject(c)) return;
          const { name: _n, load_assignment: _l, ...rest } = c;
          collectClusterRefs(walk, rest, `${where}[${i}]`);
        });
      continue;
    }
    if ((k === "cluster" || k === "cluster_name" || k === "clusterName") && typeof v === "string")
      walk.clusterRefs.push({ name: v, path: where });
    else collectClusterRefs(walk, v, where);
  }
}

function perFilterKeys(walk: Walk, value: unknown, path: string, filters: Set<string>): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      perFilterKeys(walk, v, `${path}[${i}]`, filters);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const where = `${path}.${k}`;
    if ((k === "typed_per_filter_config" || k === "typedPerFilterConfig") && isObject(v)) {
      for (const name of Object.keys(v))
        if (!filters.has(name)) issue(walk, `${where}.${name}`, `no HTTP filter named ${name}`);
    } else {
      perFilterKeys(walk, v, where, filters);
    }
  }
}

/** Decodes every Any inside a decoded message with its own type; returns how many. */
function unpackAnys(root: protobuf.Root, msg: protobuf.Message): number {
  let count = 0;
  const visit = (type: protobuf.Type, m: Record<string, unknown>) => {
    for (const field of type.fieldsArray) {
      const v = m[field.name];
      if (v === undefined || v === null) continue;
      const resolved = field.resolvedType;
      if (!(resolved instanceof protobuf.Type)) continue;
      const items = field.map ? Object.values(v) : field.repeated ? (v as unknown[]) : [v];
      for (const item of items) {
        if (resolved.fullName === ".google.protobuf.Any") {
          const a = item as { type_url: string; value: Uint8Array };
          const inner = root.lookupType(a.type_url.slice(a.type_url.lastIndexOf("/") + 1));
          const decoded = inner.decode(a.value);
          count++;
          visit(inner, decoded as unknown as Record<string, unknown>);
        } else {
          visit(resolved, item as Record<string, unknown>);
        }
      }
    }
  };
  visit(msg.$type, msg as unknown as Record<string, unknown>);
  return count;
}
