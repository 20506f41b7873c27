import { join } from "node:path";
import protobuf from "protobufjs";
import { RiskgateError } from "../errors.js";
import type { CheckRequestMessage } from "../transport/check-request.js";
import { PROTOS_DIR } from "../transport/protos.js";

/** A CheckRequest line that does not follow the protobuf JSON mapping; `path` names the field. */
export class CheckJsonError extends RiskgateError {
  override readonly name = "CheckJsonError";
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super("RISKGATE_REPLAY_INPUT_INVALID", `${path || "(root)"}: ${problem}`, { path });
  }
}

/** A CheckRequest read from JSON, in the shape the gRPC transport decodes, and its clock. */
export interface ParsedCheckRequest {
  readonly message: CheckRequestMessage;
  /** `attributes.request.time` in ms since epoch (undefined when the line has none). */
  readonly time: number | undefined;
}

/** Turns one proto3 canonical JSON CheckRequest into a decoded message. */
export type CheckJsonReader = (json: unknown) => ParsedCheckRequest;

/**
 * A reader of Envoy v3 CheckRequests in proto3 canonical JSON (the JSON form Envoy's own API
 * uses), driven by the same `protos/` the server loads with protobufjs: field names may be the
 * lowerCamelCase JSON names or the .proto names, 64-bit integers strings or numbers, bytes
 * base64, enums names or numbers, and the well-known types (Timestamp, Duration, Struct, Value,
 * wrappers) their JSON forms. Unknown fields are refused, as protobuf JSON parsers do by default.
 * The result has the shape proto-loader gives the gRPC handler (keepCase, longs as numbers,
 * bytes as Buffers, no defaults), so `toAccessRequest` reads both the same way.
 */
export function createCheckJsonReader(): CheckJsonReader {
  const root = new protobuf.Root();
  // the google/protobuf well-known types are built into protobufjs
  root.resolvePath = (_origin, target) =>
    target.startsWith("google/protobuf/") ? target : join(PROTOS_DIR, target);
  root.loadSync("envoy/service/auth/v3/external_auth.proto", { keepCase: true });
  root.resolveAll();
  const checkRequest = root.lookupType("envoy.service.auth.v3.CheckRequest");
  const byJsonName = new Map<protobuf.Type, Map<string, protobuf.Field>>();
  const fieldOf = (type: protobuf.Type, key: string): protobuf.Field | undefined => {
    const direct = type.fields[key];
    if (direct !== undefined) return direct;
    let names = byJsonName.get(type);
    if (names === undefined) {
      names = new Map(Object.values(type.fields).map((f) => [f.jsonName, f]));
      byJsonName.set(type, names);
    }
    return names.get(key);
  };

  function message(type: protobuf.Type, json: unknown, path: string, depth: number): unknown {
    if (depth > 64) throw new CheckJsonError(path, "nested too deeply");
    const wkt = WELL_KNOWN[type.fullName];
    if (wkt !== undefined) return wkt(json, path, depth);
    if (!isObject(json)) throw new CheckJsonError(path, `expected an object (${type.name})`);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(json)) {
      const field = fieldOf(type, key);
      const at = path === "" ? key : `${path}.${key}`;
      if (field === undefined) throw new CheckJsonError(at, `unknown field of ${type.name}`);
      const value = json[key];
      // null is the field's default (absent), except for google.protobuf.Value
      if (value === null && field.resolvedType?.fullName !== ".google.protobuf.Value") continue;
      out[field.name] = fieldValue(field, value, at, depth + 1);
    }
    return out;
  }

  function fieldValue(field: protobuf.Field, value: unknown, path: string, depth: number): unknown {
    if (field.map) {
      if (!isObject(value)) throw new CheckJsonError(path, "expected an object (map)");
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(value)) out[k] = single(field, value[k], `${path}.${k}`, depth);
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) throw new CheckJsonError(path, "expected an array");
      return value.map((v, i) => single(field, v, `${path}[${i}]`, depth));
    }
    return single(field, value, path, depth);
  }

  function single(field: protobuf.Field, value: unknown, path: string, depth: number): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) return message(resolved, value, path, depth);
    if (resolved instanceof protobuf.Enum) {
      if (typeof value === "number" && Number.isInteger(value)) return value;
      if (typeof value === "string" && Object.hasOwn(resolved.values, value)) {
        return resolved.values[value];
      }
      throw new CheckJsonError(path, `not a value of enum ${resolved.name}`);
    }
    return scalar(field.type, value, path);
  }

  return (json) => {
    const msg = message(checkRequest, json, "", 0) as CheckRequestMessage & {
      attributes?: { request?: { time?: { seconds?: number; nanos?: number } } };
    };
    const t = msg.attributes?.request?.time;
    const time =
      t === undefined ? undefined : (t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
    return { message: msg, time };
  };
}

type WellKnown = (json: unknown, path: string, depth: number) => unknown;

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

const WELL_KNOWN: Record<string, WellKnown> = {
  ".google.protobuf.Timestamp": (json, path) => {
    if (typeof json !== "string") throw new CheckJsonError(path, "expected an RFC 3339 string");
    return parseTimestamp(json, path);
  },
  ".google.protobuf.Duration": (json, path) => {
    const m = typeof json === "string" ? /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(json) : null;
    if (m === null) throw new CheckJsonError(path, 'expected a duration like "1.5s"');
    const sign = m[1] === "-" ? -1 : 1;
    return {
      seconds: sign * Number(m[2]),
      nanos: sign * Number((m[3] ?? "").padEnd(9, "0")),
    };
  },
  ".google.protobuf.Struct": (json, path, depth) => structOf(json, path, depth),
  ".google.protobuf.Value": (json, path, depth) => protoValue(json, path, depth),
  ".google.protobuf.ListValue": (json, path, depth) => {
    if (!Array.isArray(json)) throw new CheckJsonError(path, "expected an array");
    return { values: json.map((v, i) => protoValue(v, `${path}[${i}]`, depth + 1)) };
  },
  ".google.protobuf.Any": (json, path) => {
    if (!isObject(json) || typeof json["@type"] !== "string") {
      throw new CheckJsonError(path, 'expected an object with "@type"');
    }
    // riskgate reads no Any field; the type is kept, the payload is not decoded
    return { type_url: json["@type"] };
  },
  ".google.protobuf.Empty": (json, path) => {
    if (!isObject(json)) throw new CheckJsonError(path, "expected an object");
    return {};
  },
  ...Object.fromEntries(
    Object.entries(WRAPPERS).map(([name, type]): [string, WellKnown] => [
      name,
      (json, path) => ({ value: scalar(type, json, path) }),
    ]),
  ),
};

function structOf(json: unknown, path: string, depth: number): unknown {
  if (!isObject(json)) throw new CheckJsonError(path, "expected an object (Struct)");
  if (depth > 64) throw new CheckJsonError(path, "nested too deeply");
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(json)) {
    fields[key] = protoValue(json[key], `${path}.${key}`, depth + 1);
  }
  return { fields };
}

function protoValue(json: unknown, path: string, depth: number): unknown {
  if (depth > 64) throw new CheckJsonError(path, "nested too deeply");
  // the decoded form the gRPC handler gets (camelCase, see ValueMessage in check-request.ts)
  if (json === null) return { nullValue: 0 };
  if (typeof json === "number") return { numberValue: json };
  if (typeof json === "string") return { stringValue: json };
  if (typeof json === "boolean") return { boolValue: json };
  if (Array.isArray(json)) {
    return {
      listValue: { values: json.map((v, i) => protoValue(v, `${path}[${i}]`, depth + 1)) },
    };
  }
  return { structValue: structOf(json, path, depth) };
}

const INTEGER = /^-?\d+$/;

function scalar(type: string, value: unknown, path: string): unknown {
  switch (type) {
    case "string":
      if (typeof value !== "string") throw new CheckJsonError(path, "expected a string");
      return value;
    case "bool":
      if (typeof value !== "boolean") throw new CheckJsonError(path, "expected true or false");
      return value;
    case "double":
    case "float": {
      if (typeof value === "number") return value;
      if (value === "NaN") return Number.NaN;
      if (value === "Infinity") return Number.POSITIVE_INFINITY;
      if (value === "-Infinity") return Number.NEGATIVE_INFINITY;
      if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
        return Number(value);
      }
      throw new CheckJsonError(path, "expected a number");
    }
    case "bytes": {
      if (typeof value !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) {
        throw new CheckJsonError(path, "expected base64");
      }
      return Buffer.from(
        value,
        value.includes("-") || value.includes("_") ? "base64url" : "base64",
      );
    }
    default: {
      // the 32- and 64-bit integer types: a number, or a decimal string (64-bit ones as JSON
      // carries them); read as numbers, as proto-loader's `longs: Number` does
      const n =
        typeof value === "number"
          ? value
          : typeof value === "string" && INTEGER.test(value)
            ? Number(value)
            : Number.NaN;
      if (!Number.isInteger(n)) throw new CheckJsonError(path, `expected an integer (${type})`);
      if (type.startsWith("u") || type.startsWith("fixed")) {
        if (n < 0) throw new CheckJsonError(path, `expected an unsigned integer (${type})`);
      }
      return n;
    }
  }
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time (as protobuf's Timestamp JSON form) to seconds and nanos. */
export function parseTimestamp(text: string, path = ""): { seconds: number; nanos: number } {
  const m = RFC3339.exec(text);
  if (m === null) throw new CheckJsonError(path, `not an RFC 3339 time: ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  const base = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(base);
  if (
    check.getUTCDate() !== Number(d) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    throw new CheckJsonError(path, `not a valid date/time: ${JSON.stringify(text)}`);
  }
  let offsetMin = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    offsetMin = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  return {
    seconds: Math.floor(base / 1000) - offsetMin * 60,
    nanos: Number(frac.padEnd(9, "0")),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
