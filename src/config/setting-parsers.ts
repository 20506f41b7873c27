import { type IpRange, parseCidr } from "../geo/ip-address.js";
import { createIpList, type IpList } from "../geo/ip-list.js";

/**
 * The parsers of the settings table (`settings.ts`): each takes the trimmed raw text of one
 * environment variable or flag and returns its value, or throws an Error whose message says
 * what was expected (the table adds the variable's name).
 */

export const text = (raw: string) => raw;
export const bool = (raw: string) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error("expected true or false");
};
export const int = (min: number, max: number) => (raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`expected an integer from ${min} to ${max}`);
  }
  return n;
};
export const ratio = (raw: string) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error("expected a number from 0 to 1");
  return n;
};
export const oneOf =
  <T extends string>(...values: T[]) =>
  (raw: string): T => {
    if (!(values as string[]).includes(raw))
      throw new Error(`expected one of ${values.join(", ")}`);
    return raw as T;
  };
/** OTEL_TRACES_EXPORTER: one exporter name (lists of several are refused); "" when unset. */
export const tracesExporter = (raw: string): "" | "otlp" | "console" | "none" => {
  const names = raw
    .split(",")
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== "" && n !== "none");
  if (names.length === 0) return "none";
  if (names.length > 1 || (names[0] !== "otlp" && names[0] !== "console")) {
    throw new Error("expected one of otlp, console or none");
  }
  return names[0];
};
/** OTEL_SDK_DISABLED: only `true` (any case) disables, as the OpenTelemetry spec says. */
export const otelBool = (raw: string) => /^true$/i.test(raw);
/** `k=v,k2=v2` with percent-encoded values (the OTEL_RESOURCE_ATTRIBUTES format). */
export const keyValues = (raw: string): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {};
  for (const pair of raw.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    try {
      out[pair.slice(0, eq).trim()] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      // a malformed escape: the SDK ignores such a pair too
    }
  }
  return Object.freeze(out);
};
export const otlpProtocol = oneOf("http/protobuf", "http/json", "grpc");
/** A comma-separated list of addresses or CIDR blocks, as an {@link IpList}. */
export const cidrList = (raw: string): IpList => {
  const ranges: IpRange[] = [];
  for (const entry of raw.split(",")) {
    const text = entry.trim();
    if (text === "") continue;
    const range = parseCidr(text);
    if (typeof range === "string") throw new Error(range);
    ranges.push(range);
  }
  return createIpList(ranges, raw);
};
/** A parser whose setting may stay unset (""), falling back to another one. */
export const orUnset =
  <T>(parse: (raw: string) => T) =>
  (raw: string): T | "" =>
    parse(raw);
export const level = (raw: string) => {
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(raw)) {
    throw new Error("expected fatal, error, warn, info, debug, trace or silent");
  }
  return raw;
};

/**
 * A listen address, `host:port` or `[v6]:port` with a port from 0 to 65535, checked for its form
 * only: whether the address can be bound is found out by binding it (exit 4). `words` are the
 * other values the setting takes (`off`); `anyHost` lets `:port` mean every interface.
 */
export const listenAddress =
  (options: { words?: readonly string[]; anyHost?: boolean } = {}) =>
  (raw: string): string => {
    if (options.words?.includes(raw)) return raw;
    const m = /^(?:\[([^\]]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(raw);
    const host = m?.[1] ?? m?.[2] ?? "";
    const free = options.anyHost === true;
    if (m === null || Number(m[3]) > 65_535 || (host === "" && !free)) {
      const forms = [free ? "host:port or :port" : "host:port", ...(options.words ?? [])];
      throw new Error(`expected ${forms.join(" or ")} (port 0-65535)`);
    }
    return raw;
  };

/** A Redis URL: `redis://` or `rediss://` (its credentials are never echoed in an error). */
export const redisUrl = (raw: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error("expected a redis:// or rediss:// URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new Error(`expected a redis:// or rediss:// URL, got ${url.protocol}//`);
  }
  return raw;
};

/** An HTTP header name (lower-cased), or "" for unset. */
export const headerName = (raw: string): string => {
  const name = raw.trim().toLowerCase();
  if (name !== "" && !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
    throw new Error(`expected an HTTP header name, got "${raw}"`);
  }
  return name;
};
