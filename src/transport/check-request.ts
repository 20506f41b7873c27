import { randomUUID } from "node:crypto";
import { isIPv4 } from "node:net";
import ipaddr from "ipaddr.js";
import type { AccessRequest } from "../access/request.js";
import { RiskgateError } from "../errors.js";
import { pathAmbiguity } from "./path-ambiguity.js";
import { peerOfCertificate } from "./peer-certificate.js";

/**
 * Envoy's CheckRequest as proto-loader decodes it (keepCase, defaults off): every field may be
 * missing, and a client may send any junk. Only the fields a decision reads are typed.
 */
export interface CheckRequestMessage {
  attributes?: {
    source?: PeerMessage;
    destination?: PeerMessage;
    request?: { http?: HttpRequestMessage };
    context_extensions?: Record<string, string>;
    metadata_context?: { filter_metadata?: Record<string, StructMessage> };
    tls_session?: { sni?: string };
  };
}

interface PeerMessage {
  address?: { socket_address?: { address?: string; port_value?: number } };
  principal?: string;
  /** The peer's URL-encoded PEM certificate (Envoy `include_peer_certificate`). */
  certificate?: string;
}

interface HttpRequestMessage {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: { key?: string; value?: string; raw_value?: Buffer }[] };
  path?: string;
  host?: string;
  size?: number;
}

/** google.protobuf.Struct as decoded (not JSON-mapped) by proto-loader. */
export interface StructMessage {
  fields?: Record<string, ValueMessage>;
}

/**
 * google.protobuf.Value as decoded. Its field names are camelCase whatever `keepCase` says:
 * protobufjs brings its own descriptor of the well-known types, written with camelCase names,
 * and proto-loader uses it instead of struct.proto.
 */
export interface ValueMessage {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMessage;
  listValue?: { values?: ValueMessage[] };
}

export interface NormaliseOptions {
  /** Proxies in front of Envoy whose x-forwarded-for entries are trusted. */
  readonly trustedHops: number;
  readonly now: number;
}

/** Thrown when the CheckRequest has no HTTP attributes to decide on. */
export class MalformedCheckRequest extends RiskgateError {
  override readonly name = "MalformedCheckRequest";

  constructor(message: string) {
    super("RISKGATE_REQUEST_MALFORMED", message);
  }
}

const MAX_HEADER_VALUE = 16 * 1024;

/** Turns a decoded CheckRequest into the one normalised {@link AccessRequest}. */
export function toAccessRequest(
  msg: CheckRequestMessage,
  options: NormaliseOptions,
): AccessRequest {
  const attrs = msg.attributes;
  const http = attrs?.request?.http;
  if (http === undefined || http === null) {
    throw new MalformedCheckRequest("CheckRequest has no attributes.request.http");
  }
  const headers = readHeaders(http);
  const rawPath = http.path || headers.get(":path") || "/";
  const { path, query, ambiguity } = splitPath(rawPath);
  const host = hostWithoutPort(http.host || headers.get(":authority") || headers.get("host") || "");
  const method = (http.method || headers.get(":method") || "GET").toUpperCase();
  const sourceIp = canonicalIp(attrs?.source?.address?.socket_address?.address);
  const hops = forwardedChain(sourceIp, headers.get("x-forwarded-for"), options.trustedHops);
  return {
    id: http.id || headers.get("x-request-id") || randomUUID(),
    method,
    host,
    path,
    query,
    ...(ambiguity === undefined ? {} : { pathAmbiguity: ambiguity }),
    headers,
    clientIp: hops.client,
    ...(hops.edge === undefined ? {} : { edgeProxy: hops.edge }),
    size: typeof http.size === "number" ? http.size : -1,
    ...peerOf(attrs?.source),
    sni: attrs?.tls_session?.sni ?? "",
    contextExtensions: attrs?.context_extensions ?? {},
    metadata: readMetadata(attrs?.metadata_context?.filter_metadata),
    receivedAt: options.now,
  };
}

/** The peer's principal and, when Envoy sent its certificate, the certificate's SANs. */
function peerOf(source: PeerMessage | undefined): Pick<AccessRequest, "principal" | "peerNames"> {
  const principal = source?.principal ?? "";
  if (!source?.certificate) return { principal };
  const cert = peerOfCertificate(source.certificate);
  return { principal: principal || cert.principal, peerNames: cert.names };
}

function readHeaders(http: HttpRequestMessage): Map<string, string> {
  const out = new Map<string, string>();
  if (http.headers) {
    for (const key of Object.keys(http.headers)) {
      const value = http.headers[key];
      if (typeof value === "string") out.set(key.toLowerCase(), clip(value));
    }
  }
  // Envoy sends header_map instead of headers when encode_raw_headers is on; repeated keys are
  // joined as HTTP says they may be (cookies with "; ").
  for (const h of http.header_map?.headers ?? []) {
    if (!h.key) continue;
    const key = h.key.toLowerCase();
    const value = clip(h.raw_value?.length ? h.raw_value.toString("latin1") : (h.value ?? ""));
    const prev = out.get(key);
    out.set(key, prev === undefined ? value : `${prev}${key === "cookie" ? "; " : ","}${value}`);
  }
  return out;
}

function clip(value: string): string {
  return value.length > MAX_HEADER_VALUE ? value.slice(0, MAX_HEADER_VALUE) : value;
}

/**
 * Splits `path?query#fragment` and normalises the path as routes are matched on it; `ambiguity`
 * says why the path may mean something else upstream (see path-ambiguity.ts).
 */
export function splitPath(raw: string): { path: string; query: string; ambiguity?: string } {
  const hash = raw.indexOf("#");
  const noFragment = hash === -1 ? raw : raw.slice(0, hash);
  const q = noFragment.indexOf("?");
  const path = q === -1 ? noFragment : noFragment.slice(0, q);
  const query = q === -1 ? "" : noFragment.slice(q + 1);
  const ambiguity = pathAmbiguity(raw);
  return ambiguity === undefined
    ? { path: normalisePath(path), query }
    : { path: normalisePath(path), query, ambiguity };
}

/**
 * Resolves `.`/`..` segments, merges repeated slashes and decodes percent-encoded unreserved
 * characters, so `/admin`, `//admin`, `/x/../admin` and `/%61dmin` all match a rule for
 * `/admin`. Envoy should normalise the same way (`normalize_path`, `merge_slashes`).
 */
export function normalisePath(path: string): string {
  let p = path.startsWith("/") ? path : `/${path}`;
  if (p.includes("%")) {
    p = p.replace(/%([0-9a-fA-F]{2})/g, (m, hex: string) => {
      const c = String.fromCharCode(Number.parseInt(hex, 16));
      return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
    });
  }
  if (!p.includes("//") && !p.includes("/.")) return p;
  const out: string[] = [];
  const segments = p.split("/");
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i] as string;
    if (seg === "" && i < segments.length - 1) continue;
    if (seg === ".") continue;
    if (seg === "..") {
      out.pop();
      continue;
    }
    out.push(seg);
  }
  const last = segments[segments.length - 1];
  const trailing = (last === "." || last === "..") && out[out.length - 1] !== "";
  return `/${out.join("/")}${trailing ? "/" : ""}`;
}

/** A Host (or :authority) value without its port, lower-case; IPv6 brackets removed. */
export function hostWithoutPort(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end === -1 ? h : h.slice(1, end);
  }
  const colon = h.indexOf(":");
  return colon === -1 || h.indexOf(":", colon + 1) !== -1 ? h : h.slice(0, colon);
}

/** Canonical text of an IP ("" when invalid); IPv4-mapped IPv6 as IPv4. */
export function canonicalIp(raw: string | undefined): string {
  if (!raw) return "";
  const text = raw.trim();
  // the common case, cheaply: node:net accepts only canonical dotted quads (no leading zeros)
  if (isIPv4(text)) return text;
  if (!ipaddr.isValid(text)) return "";
  const addr = ipaddr.parse(text);
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (addr as ipaddr.IPv6).toIPv4Address().toString();
  }
  return addr.toString();
}

/**
 * The client IP and the trusted proxy it connected to. The chain is x-forwarded-for's entries
 * followed by Envoy's source address; `trustedHops` proxies sit at its right end, so the client
 * is the entry just left of them and the edge proxy the entry just right. A chain shorter than
 * that did not come through the trusted proxies: the source address wins, and there is no edge.
 */
function forwardedChain(
  sourceIp: string,
  xff: string | undefined,
  trustedHops: number,
): { client: string; edge?: string } {
  if (trustedHops === 0 || xff === undefined) return { client: sourceIp };
  const chain = xff
    .split(",")
    .map((s) => canonicalIp(s))
    .filter((s) => s !== "");
  if (sourceIp !== "" && chain[chain.length - 1] !== sourceIp) chain.push(sourceIp);
  const index = chain.length - 1 - trustedHops;
  if (index < 0) return { client: sourceIp };
  return { client: chain[index] as string, edge: chain[index + 1] as string };
}

function readMetadata(
  filterMetadata: Record<string, StructMessage> | undefined,
): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  if (!filterMetadata) return out;
  for (const ns of Object.keys(filterMetadata)) {
    out[ns] = structToJson(filterMetadata[ns]);
  }
  return out;
}

/** google.protobuf.Struct (decoded form) to a plain JSON object; depth-limited. */
export function structToJson(s: StructMessage | undefined, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!s?.fields || depth > 32) return out;
  for (const key of Object.keys(s.fields)) out[key] = valueToJson(s.fields[key], depth + 1);
  return out;
}

function valueToJson(v: ValueMessage | undefined, depth: number): unknown {
  if (v === undefined || v === null) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return structToJson(v.structValue, depth);
  if (v.listValue !== undefined) {
    return depth > 32 ? [] : (v.listValue.values ?? []).map((x) => valueToJson(x, depth + 1));
  }
  return null;
}
