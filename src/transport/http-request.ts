import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { ReasonCode } from "../access/reasons.js";
import type { AccessRequest } from "../access/request.js";
import { RiskgateError } from "../errors.js";
import type { IpList } from "../geo/ip-list.js";
import { canonicalIp, hostWithoutPort, splitPath } from "./check-request.js";
import { peerOfHeader } from "./peer-certificate.js";

/**
 * The forward-auth dialects the HTTP listener speaks. `envoy`: Envoy's (or Istio's) HTTP
 * ext_authz, the original method and path after a prefix. `forward`: Traefik ForwardAuth and
 * Caddy forward_auth (X-Forwarded-Method/-Proto/-Host/-Uri/-For). `nginx`: nginx auth_request
 * and ingress-nginx auth-url (X-Original-URI or X-Original-URL, X-Original-Method, X-Real-IP).
 */
export type HttpDialect = "envoy" | "forward" | "nginx";

/** Where each dialect is served on the HTTP listener; `/auth` alone detects the dialect. */
export const HTTP_AUTH_PATHS = {
  detect: "/auth",
  nginx: "/auth/nginx",
  forward: "/auth/forward",
  /** Envoy's `path_prefix`: the original path follows it. */
  envoy: "/auth/envoy",
} as const;

/** A forward-auth request riskgate cannot decide on: answered 400 (403 from an untrusted peer). */
export class MalformedHttpRequest extends RiskgateError {
  override readonly name = "MalformedHttpRequest";
  readonly reason: ReasonCode;

  constructor(message: string, reason: ReasonCode = "request.malformed") {
    super("RISKGATE_REQUEST_MALFORMED", message);
    this.reason = reason;
  }
}

export interface HttpNormaliseOptions {
  /** Peers allowed to send forward-auth headers (the proxies' addresses or CIDRs). */
  readonly trustedProxies: IpList;
  /** Proxies in front of the proxy whose X-Forwarded-For entries are trusted, as for gRPC. */
  readonly trustedHops: number;
  /**
   * The header a trusted proxy puts the verified client certificate in (XFCC, or the PEM);
   * unset: forward-auth requests carry no peer identity.
   */
  readonly clientCertHeader?: string;
  readonly now: number;
}

/** The parts of an incoming authorization request the transport reads. */
export interface HttpAuthzInput {
  readonly method: string;
  /** The request target as received (path and query). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The TCP peer (the proxy). */
  readonly peer: string;
}

const MAX_HEADER_VALUE = 16 * 1024;
const METHOD = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/;

/** The dialect of a request to the listener, from its path (or its headers on `/auth`). */
export function dialectOf(path: string, headers: IncomingHttpHeaders): HttpDialect | undefined {
  if (path === HTTP_AUTH_PATHS.nginx) return "nginx";
  if (path === HTTP_AUTH_PATHS.forward) return "forward";
  if (path === HTTP_AUTH_PATHS.envoy || path.startsWith(`${HTTP_AUTH_PATHS.envoy}/`)) {
    return "envoy";
  }
  if (path !== HTTP_AUTH_PATHS.detect) return undefined;
  const nginx = headers["x-original-uri"] !== undefined || headers["x-original-url"] !== undefined;
  const forward = headers["x-forwarded-uri"] !== undefined;
  if (nginx === forward) return undefined;
  return nginx ? "nginx" : "forward";
}

/**
 * Turns a forward-auth request into the one normalised {@link AccessRequest}: the original
 * method, host and path from the dialect's headers, the client IP from the forwarded chain
 * (trusted only from a configured proxy), the original request's headers as sent.
 */
export function httpToAccessRequest(
  dialect: HttpDialect,
  input: HttpAuthzInput,
  options: HttpNormaliseOptions,
): AccessRequest {
  const peer = canonicalIp(input.peer);
  if (peer === "" || !options.trustedProxies.has(peer)) {
    throw new MalformedHttpRequest(
      `forward-auth request from ${peer || "an unknown peer"}, which is not in RISKGATE_HTTP_TRUSTED_PROXIES`,
      "request.untrusted_proxy",
    );
  }
  const headers = readHeaders(input.headers);
  const original = originalTarget(dialect, input, headers);
  const { path, query, ambiguity } = splitPath(original.target);
  return {
    id: headers.get("x-request-id") || randomUUID(),
    method: original.method,
    host: hostWithoutPort(original.host),
    path,
    query,
    ...(ambiguity === undefined ? {} : { pathAmbiguity: ambiguity }),
    headers,
    ...forwardedChain(peer, headers, options.trustedHops),
    size: declaredSize(headers.get("content-length")),
    ...forwardedPeer(headers, options.clientCertHeader),
    sni: "",
    contextExtensions: {},
    metadata: {},
    receivedAt: options.now,
  };
}

/**
 * The client certificate a trusted proxy forwarded (the request came from one: checked above).
 * The proxy must set the header itself and drop any value the client sent.
 */
function forwardedPeer(
  headers: ReadonlyMap<string, string>,
  header: string | undefined,
): Pick<AccessRequest, "principal" | "peerNames"> {
  const value = header === undefined ? undefined : headers.get(header);
  if (value === undefined || value === "") return { principal: "" };
  const peer = peerOfHeader(value);
  return { principal: peer.principal, peerNames: peer.names };
}

interface OriginalTarget {
  method: string;
  host: string;
  /** Path and query of the original request. */
  target: string;
}

function originalTarget(
  dialect: HttpDialect,
  input: HttpAuthzInput,
  headers: ReadonlyMap<string, string>,
): OriginalTarget {
  switch (dialect) {
    case "envoy": {
      const target = input.url.slice(HTTP_AUTH_PATHS.envoy.length) || "/";
      if (!target.startsWith("/") && !target.startsWith("?")) {
        throw new MalformedHttpRequest(`envoy path ${input.url} does not follow the prefix`);
      }
      return {
        method: method(input.method, "request method"),
        // Envoy sends the original Host; an X-Forwarded-Host would be the client's own
        host: headers.get("host") || "",
        target: target.startsWith("?") ? `/${target}` : target,
      };
    }
    case "forward": {
      const uri = required(headers, "x-forwarded-uri");
      return {
        method: method(required(headers, "x-forwarded-method"), "x-forwarded-method"),
        host: required(headers, "x-forwarded-host"),
        target: originPath(uri, "x-forwarded-uri"),
      };
    }
    case "nginx": {
      const uri = headers.get("x-original-uri");
      const url = headers.get("x-original-url");
      let host = headers.get("x-forwarded-host") || headers.get("host") || "";
      let target: string;
      if (url !== undefined) {
        let parsed: URL;
        try {
          parsed = new URL(url);
        } catch {
          throw new MalformedHttpRequest("x-original-url is not an absolute URL");
        }
        // path and query as sent: URL would resolve dot segments before riskgate normalises
        const rest = url.slice(url.indexOf("//") + 2);
        const slash = rest.search(/[/?]/);
        target = slash === -1 ? "/" : originPath(rest.slice(slash), "x-original-url");
        host = parsed.host;
        if (uri !== undefined && originPath(uri, "x-original-uri") !== target) {
          throw new MalformedHttpRequest("x-original-uri and x-original-url disagree");
        }
      } else {
        target = originPath(required(headers, "x-original-uri"), "x-original-uri");
      }
      return {
        method: method(required(headers, "x-original-method"), "x-original-method"),
        host,
        target,
      };
    }
  }
}

function required(headers: ReadonlyMap<string, string>, name: string): string {
  const value = headers.get(name);
  if (value === undefined || value === "") {
    throw new MalformedHttpRequest(`${name} is missing`);
  }
  return value;
}

function method(raw: string, from: string): string {
  const m = raw.trim().toUpperCase();
  if (!METHOD.test(m)) throw new MalformedHttpRequest(`${from} is not an HTTP method`);
  return m;
}

function originPath(raw: string, from: string): string {
  // a list (two proxies appending) or an absolute-form URI is contradictory, not a path
  if (!raw.startsWith("/") || raw.includes(",") || /[\s\0]/.test(raw)) {
    throw new MalformedHttpRequest(`${from} is not a single origin-form path`);
  }
  return raw;
}

/** Request headers with lower-case names; repeated ones joined as HTTP says they may be. */
function readHeaders(raw: IncomingHttpHeaders): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of Object.keys(raw)) {
    const value = raw[key];
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(key === "cookie" ? "; " : ",") : value;
    out.set(key, text.length > MAX_HEADER_VALUE ? text.slice(0, MAX_HEADER_VALUE) : text);
  }
  return out;
}

function declaredSize(raw: string | undefined): number {
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return -1;
  return Number(raw);
}

/**
 * The client IP of a request made to the listener itself (the challenge page): the forwarded
 * chain when the peer is a trusted proxy, else the peer, whose forwarded headers are ignored.
 */
export function browserClientIp(
  peerRaw: string,
  raw: IncomingHttpHeaders,
  options: Pick<HttpNormaliseOptions, "trustedProxies" | "trustedHops">,
): string {
  const peer = canonicalIp(peerRaw);
  if (peer === "" || !options.trustedProxies.has(peer)) return peer;
  return forwardedChain(peer, readHeaders(raw), options.trustedHops).clientIp;
}

/**
 * The client IP, as for gRPC: the chain is X-Forwarded-For's entries followed by what the
 * proxy itself saw (X-Real-IP, else the last X-Forwarded-For entry, else the peer), and
 * `trustedHops` proxies in front of the proxy sit at its right end; the outermost of them, the
 * one the client connected to, is the edge proxy.
 */
function forwardedChain(
  peer: string,
  headers: ReadonlyMap<string, string>,
  trustedHops: number,
): { clientIp: string; edgeProxy?: string } {
  const chain = (headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((s) => canonicalIp(s))
    .filter((s) => s !== "");
  const real = canonicalIp(headers.get("x-real-ip"));
  if (real !== "" && chain[chain.length - 1] !== real) chain.push(real);
  if (chain.length === 0) return { clientIp: peer };
  const seen = chain[chain.length - 1] as string;
  const index = chain.length - 1 - trustedHops;
  // a chain shorter than the hops did not come through them: no edge proxy to believe
  if (index < 0 || trustedHops === 0) return { clientIp: seen };
  return { clientIp: chain[index] as string, edgeProxy: chain[index + 1] as string };
}
