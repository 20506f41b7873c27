/**
 * The normalised request every transport produces and the access pipeline consumes. The core
 * never sees gRPC or HTTP wire types: only this.
 */
export interface AccessRequest {
  /** Request id (Envoy's x-request-id, or one riskgate made up). */
  readonly id: string;
  /** Upper-case HTTP method. */
  readonly method: string;
  /** Host without port, lower-case. */
  readonly host: string;
  /** Path without query string or fragment. */
  readonly path: string;
  /** Raw query string without the leading `?` ("" when none). */
  readonly query: string;
  /**
   * Why the path as received may mean something else to the upstream than `path` means to the
   * route match (an escaped slash, a backslash, a `;` parameter, ...); absent when it cannot.
   */
  readonly pathAmbiguity?: string;
  /** Request headers with lower-case names. Pseudo-headers (`:path`, ...) are included as sent. */
  readonly headers: ReadonlyMap<string, string>;
  /** Client IP as text (IPv4 or IPv6), "" when unknown. */
  readonly clientIp: string;
  /**
   * The trusted proxy the client connected to (the outermost of RISKGATE_TRUSTED_HOPS, e.g. a
   * CDN edge), when the request came through all of them; absent otherwise. Headers such a
   * proxy sets (a bot score) are believed only then (see signals.external_scores).
   */
  readonly edgeProxy?: string;
  /** Declared request size in bytes, -1 when unknown. */
  readonly size: number;
  /** mTLS principal of the downstream peer ("" when none). */
  readonly principal: string;
  /**
   * The URI and DNS SANs of the peer's verified client certificate, when the proxy sent it
   * (Envoy `include_peer_certificate`, or a trusted proxy's client-certificate header).
   */
  readonly peerNames?: readonly string[];
  /** TLS SNI ("" when none). */
  readonly sni: string;
  /** Envoy per-route context extensions. */
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** Envoy dynamic metadata: filter namespace -> plain JSON object. */
  readonly metadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** When the decision started (ms since epoch, from the injected clock). */
  readonly receivedAt: number;
  /**
   * The browser challenge clearance the request carried, as the transport read it (its
   * signature, lifetime, network and user agent checked); absent when it carried none.
   */
  readonly clearance?: ClearanceFact;
}

/**
 * A clearance cookie as read: `valid` names the subject it was issued to (an anonymous
 * session's is `anon:<id>`) and the challenge passed; `refused` says why it does not count.
 */
export type ClearanceFact =
  | { readonly kind: "valid"; readonly subject: string; readonly mechanism: string }
  | { readonly kind: "refused"; readonly why: "forged" | "expired" | "network" | "user_agent" };

/**
 * A request with nothing in it: what a transport renders against, or replay records, when the
 * wire request could not be read.
 */
export function emptyRequest(over: { id?: string; receivedAt?: number } = {}): AccessRequest {
  return {
    id: over.id ?? "",
    method: "",
    host: "",
    path: "/",
    query: "",
    headers: new Map(),
    clientIp: "",
    size: -1,
    principal: "",
    sni: "",
    contextExtensions: {},
    metadata: {},
    receivedAt: over.receivedAt ?? 0,
  };
}
