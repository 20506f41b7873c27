import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { AccessRequest } from "../access/request.js";
import { CHALLENGE_PATH, type Page } from "../challenge/page.js";
import type { ChallengeService } from "../challenge/service.js";
import type { IpList } from "../geo/ip-list.js";
import { type BoundaryDeps, decideAtBoundary } from "./decision-boundary.js";
import {
  browserClientIp,
  dialectOf,
  type HttpDialect,
  httpToAccessRequest,
  MalformedHttpRequest,
} from "./http-request.js";
import {
  type HttpAnswer,
  NGINX_BODY_HEADER,
  NGINX_STATUS_HEADER,
  renderHttpAnswer,
} from "./http-response.js";

export interface HttpAuthzDeps extends BoundaryDeps {
  readonly clock: () => number;
  readonly trustedHops: number;
  /** Peers whose forward-auth headers are believed (RISKGATE_HTTP_TRUSTED_PROXIES). */
  readonly trustedProxies: IpList;
  /** Header in which those proxies forward the verified client certificate (absent: none). */
  readonly clientCertHeader?: string;
  /** True while the server takes traffic (`/readyz`); false during start-up and drain. */
  readonly ready: () => boolean;
  /** Serves the browser challenge page at `/.riskgate/challenge` (absent: 404 there). */
  readonly challenges?: ChallengeService;
}

export interface HttpAuthzServer {
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (up to graceMs), then closes the rest. */
  close(graceMs: number): Promise<void>;
}

/**
 * The most header lines (the request line not counted) a request to the listener may carry;
 * one more is answered 431.
 */
export const MAX_REQUEST_HEADERS = 500;

/** A forward-auth request declaring a larger body than this is refused (400) unread. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The HTTP forward-auth handler: every request is answered exactly once, whatever throws (the
 * boundary is `decision-boundary.ts`, shared with the gRPC Check handler). Bad input is a 400
 * deny with a reason code; an unexpected error the configured safe outcome; when even that
 * cannot be rendered, a bare 503.
 */
export function createHttpAuthzHandler(
  deps: HttpAuthzDeps,
): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    const started = process.hrtime.bigint();
    const url = request.url ?? "/";
    const pathOnly = url.split("?")[0] as string;
    if (answeredUndecided(deps, request, response, url, pathOnly)) return;
    const dialect = dialectOf(pathOnly, request.headers);
    if (dialect === undefined && !pathOnly.startsWith("/auth")) {
      send(response, {
        status: 404,
        headers: [["content-type", "application/json"]],
        body: '{"error":"not found: forward-auth lives under /auth"}',
      });
      return;
    }
    // the request's own body is never needed; read it away so keep-alive works, within a bound
    let bodyBytes = 0;
    request.on("data", (chunk: Buffer) => {
      bodyBytes += chunk.length;
      if (bodyBytes > MAX_BODY_BYTES) request.destroy();
    });
    request.on("error", () => {});

    const rendering: HttpDialect = dialect ?? "forward";
    decideAtBoundary(deps, {
      label: "forward-auth",
      transport: "http",
      started,
      traceHeader: (name) => {
        const v = request.headers[name];
        return typeof v === "string" ? v : undefined;
      },
      read: () => readForwardAuth(deps, dialect, request, url),
      render: (verdict, req, runtime) =>
        renderHttpAnswer(rendering, verdict, req, runtime.policy.doc.decisions),
      send: (answer) => send(response, answer),
      lastResort: LAST_RESORT,
      // a proxy that gave up closed the connection: nobody reads the answer
      gone: () => (request.socket.destroyed ? "cancelled" : undefined),
      refuse(why) {
        if (why === "overloaded") send(response, OVERLOADED);
        else response.destroy();
      },
    });
  };
}

/**
 * Answers what is not a decision: a request with too many headers, the health endpoints and
 * the challenge page. True when it answered.
 */
function answeredUndecided(
  deps: HttpAuthzDeps,
  request: IncomingMessage,
  response: ServerResponse,
  url: string,
  pathOnly: string,
): boolean {
  if (request.rawHeaders.length > MAX_REQUEST_HEADERS * 2) {
    // Node keeps only the first `maxHeadersCount` headers: past the limit, what came after
    // (what a proxy appended behind a client's padding) was never read, so nothing is decided
    request.resume();
    // nginx's auth_request turns any status but 2xx, 401 and 403 into a 500: its dialect gets
    // the 403 that carries the real status and body (the dialect read from the path, or from
    // the headers that were read)
    const nginx = dialectOf(pathOnly, request.headers) === "nginx";
    send(response, nginx ? TOO_MANY_HEADERS_NGINX : TOO_MANY_HEADERS);
    return true;
  }
  if (pathOnly === "/healthz" || pathOnly === "/readyz") {
    const up = pathOnly === "/healthz" || deps.ready();
    send(response, {
      status: up ? 200 : 503,
      headers: [["content-type", "text/plain"]],
      body: up ? "ok\n" : "not ready\n",
    });
    return true;
  }
  if (pathOnly === CHALLENGE_PATH && deps.challenges !== undefined) {
    serveChallenge(deps, deps.challenges, request, response, url);
    return true;
  }
  return false;
}

/** Reads a forward-auth request in its dialect; throws MalformedHttpRequest for bad input. */
function readForwardAuth(
  deps: HttpAuthzDeps,
  dialect: HttpDialect | undefined,
  request: IncomingMessage,
  url: string,
): AccessRequest {
  if (dialect === undefined) {
    throw new MalformedHttpRequest(
      "unknown forward-auth dialect: use /auth/nginx, /auth/forward or /auth/envoy/<path>, or send X-Original-URI or X-Forwarded-Uri (not both) to /auth",
      "request.unknown_dialect",
    );
  }
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    throw new MalformedHttpRequest(`request body of ${declared} bytes is too large`);
  }
  return httpToAccessRequest(
    dialect,
    {
      method: request.method ?? "GET",
      url,
      // every value of a repeated header: Node's `headers` keeps only the first of some
      // (authorization, host, user-agent), so a second credential would go unseen
      headers: request.headersDistinct,
      peer: request.socket.remoteAddress ?? "",
    },
    {
      trustedProxies: deps.trustedProxies,
      trustedHops: deps.trustedHops,
      now: deps.clock(),
      ...(deps.clientCertHeader ? { clientCertHeader: deps.clientCertHeader } : {}),
    },
  );
}

/** A challenge form is a few kilobytes at most (a CAPTCHA token is about 2 KB). */
const MAX_FORM_BYTES = 16 * 1024;

/**
 * The challenge page (GET) and its answers (POST, urlencoded), reached through the proxy. Never
 * throws: an unexpected error is a bare 503 page, logged.
 */
function serveChallenge(
  deps: HttpAuthzDeps,
  challenges: ChallengeService,
  request: IncomingMessage,
  response: ServerResponse,
  url: string,
): void {
  const method = request.method ?? "GET";
  const reply = (page: Page) => send(response, page);
  const fail = (err: unknown) => {
    deps.logger.error({ err }, "challenge page failed");
    reply({ status: 503, headers: [["content-type", "text/plain"]], body: "try again\n" });
  };
  if (method !== "GET" && method !== "HEAD" && method !== "POST") {
    reply({ status: 405, headers: [["allow", "GET, HEAD, POST"]], body: "" });
    return;
  }
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
  const hit = (params: URLSearchParams) => ({
    method,
    params,
    clientIp: browserClientIp(request.socket.remoteAddress ?? "", request.headers, deps),
    userAgent: request.headers["user-agent"],
    now: deps.clock(),
  });
  const run = (params: URLSearchParams) => {
    try {
      challenges.serve(hit(params), deps.runtime().policy).then(reply).catch(fail);
    } catch (err) {
      fail(err);
    }
  };
  if (method !== "POST") {
    request.resume();
    run(new URLSearchParams(query));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  request.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      reply({ status: 413, headers: [["content-type", "text/plain"]], body: "too large\n" });
      request.destroy();
      return;
    }
    chunks.push(chunk);
  });
  request.on("error", () => {});
  request.on("end", () => {
    if (size > MAX_FORM_BYTES) return;
    run(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
  });
}

/** The listener's connection limits (settings RISKGATE_HTTP_MAX_CONNECTIONS, _KEEP_ALIVE_TIMEOUT_MS). */
export interface HttpListenerLimits {
  readonly httpMaxConnections: number;
  readonly httpKeepAliveTimeoutMs: number;
}

/** Starts the forward-auth listener on `address` (`host:port`; port 0 picks a free one). */
export async function startHttpAuthz(
  address: string,
  limits: HttpListenerLimits,
  deps: HttpAuthzDeps,
): Promise<HttpAuthzServer> {
  const { host, port } = splitAddress(address);
  const server: Server = createServer(
    {
      maxHeaderSize: 32 * 1024,
      requestTimeout: 10_000,
      // a client that opens a connection and sends nothing is let go after this
      headersTimeout: 5_000,
      keepAliveTimeout: limits.httpKeepAliveTimeoutMs,
    },
    createHttpAuthzHandler(deps),
  );
  // one header over the limit is enough to know the request is refused (431)
  server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  // connections past the cap are closed as they are accepted: each holds a file descriptor,
  // and the gRPC listener needs some left to accept Envoy's connections
  server.maxConnections = limits.httpMaxConnections;
  // unreadable requests (oversized headers, broken framing) get a 400, never a crash
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
    const body = JSON.stringify({
      decision: "deny",
      reasons: [{ code: "request.malformed", points: 0 }],
      error: tooLarge ? "request headers too large" : "unreadable HTTP request",
    });
    socket.end(
      `HTTP/1.1 ${tooLarge ? 431 : 400} Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close(graceMs) {
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** `host:port`, `[v6]:port` or `:port`. */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim());
  if (m === null) throw new TypeError(`expected host:port, got ${address}`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: Number(m[3]) };
}

function send(response: ServerResponse, a: HttpAnswer): void {
  const headers: Record<string, string> = {};
  for (const [k, v] of a.headers) headers[k] = v;
  headers["content-length"] = String(Buffer.byteLength(a.body));
  try {
    response.writeHead(a.status, headers);
  } catch (err) {
    // a header value Node refuses to send: the answer is not sent half-rendered, it is refused
    if (response.headersSent || a === LAST_RESORT) throw err;
    send(response, LAST_RESORT);
    return;
  }
  response.end(a.body);
}

/** More header lines than {@link MAX_REQUEST_HEADERS}: refused unread, never cut short. */
const TOO_MANY_HEADERS: HttpAnswer = Object.freeze({
  status: 431,
  headers: [
    ["content-type", "application/json"],
    ["connection", "close"],
  ] as const,
  body: JSON.stringify({
    decision: "deny",
    reasons: [{ code: "request.malformed", points: 0 }],
    error: `more than ${MAX_REQUEST_HEADERS} request headers`,
  }),
});

/** {@link TOO_MANY_HEADERS} as nginx's auth_request can pass it on: 403, the 431 in headers. */
const TOO_MANY_HEADERS_NGINX: HttpAnswer = Object.freeze({
  status: 403,
  headers: [
    ...TOO_MANY_HEADERS.headers,
    [NGINX_STATUS_HEADER, String(TOO_MANY_HEADERS.status)],
    [NGINX_BODY_HEADER, TOO_MANY_HEADERS.body],
  ] as const,
  body: TOO_MANY_HEADERS.body,
});

/**
 * The answer when too many requests are in flight: at once, before the request is read. A 503
 * is an error of the auth call for every proxy (nginx answers 500, Envoy its status_on_error,
 * Traefik and Caddy pass it on with Retry-After), never an allow.
 */
const OVERLOADED: HttpAnswer = Object.freeze({
  status: 503,
  headers: [
    ["content-type", "application/json"],
    ["retry-after", "1"],
  ] as const,
  body: '{"error":"riskgate overloaded: too many requests in flight; retry"}',
});

/** A 503 with no policy in it: when not even the safe outcome could be rendered. */
const LAST_RESORT: HttpAnswer = Object.freeze({
  status: 503,
  headers: [["content-type", "application/json"]] as const,
  body: '{"decision":"deny","reasons":[{"code":"failure.internal","points":0}]}',
});
