import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { LRUCache } from "lru-cache";
import { type BreakerState, createCircuitBreaker } from "../circuit-breaker.js";
import { afterPendingIo } from "../deadline.js";

/**
 * What riskgate tells the scoring service about one request: no token, no cookie, no header
 * values beyond the user agent; subject and org pseudonymised unless the policy says otherwise.
 */
export interface WebhookRequest {
  readonly request_id: string;
  readonly subject: string;
  readonly org: string;
  readonly tier: string;
  readonly route: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly client_ip: string;
  /** The client's /24 (IPv4) or /48 (IPv6). */
  readonly network: string;
  readonly country?: string;
  readonly asn?: number;
  readonly user_agent?: string;
  readonly client_class: string;
  readonly anonymous: boolean;
}

/** The service's answer, as riskgate accepts it. */
export interface WebhookAnswer {
  /** 0 (fine) to 100 (fraud): mapped by the policy's bands. */
  readonly score?: number;
  /** Points to add as is (-100..100); wins over `score`. */
  readonly points?: number;
  /** The service's own reason labels, for the reason's detail. */
  readonly reasons: readonly string[];
}

export type WebhookFailure = "timeout" | "error" | "status" | "malformed" | "breaker_open";

export type WebhookOutcome =
  | { readonly kind: "ok"; readonly answer: WebhookAnswer; readonly cached: boolean }
  | { readonly kind: "failed"; readonly failure: WebhookFailure; readonly detail?: string };

export interface ScoringWebhookOptions {
  readonly url: string;
  readonly timeoutMs: number;
  /** Answers are reused this long per cache key (0: no cache). */
  readonly cacheTtlMs: number;
  readonly cacheMax: number;
  readonly breakerFailures: number;
  readonly breakerOpenMs: number;
}

export interface ScoringWebhookDeps {
  /** Breaker clock (ms); performance.now by default. */
  readonly now?: () => number;
  onBreakerState?(state: BreakerState): void;
}

export interface ScoringWebhook {
  /** Asks the service (or the cache). Never rejects: a failure is an outcome. */
  score(body: WebhookRequest, cacheKey: string): Promise<WebhookOutcome>;
  readonly breakerState: BreakerState;
}

/** Answers larger than this are malformed: a scoring answer is a few dozen bytes. */
const MAX_ANSWER_BYTES = 16 * 1024;

/**
 * A client of one fraud-scoring service: a JSON POST with its own time budget
 * (an AbortSignal on the whole exchange), an LRU cache of answers keyed by subject and network with a TTL, and a
 * circuit breaker, so a slow or failing service costs at most its budget, and once the breaker
 * opens, nothing.
 */
export function createScoringWebhook(
  options: ScoringWebhookOptions,
  deps: ScoringWebhookDeps = {},
): ScoringWebhook {
  const breaker = createCircuitBreaker({
    failures: options.breakerFailures,
    openMs: options.breakerOpenMs,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.onBreakerState ? { onStateChange: deps.onBreakerState } : {}),
  });
  const cache =
    options.cacheTtlMs > 0
      ? new LRUCache<string, WebhookAnswer>({ max: options.cacheMax, ttl: options.cacheTtlMs })
      : undefined;

  const post = createJsonPoster(options.url);

  async function call(body: WebhookRequest): Promise<WebhookOutcome> {
    const reply = await post(JSON.stringify(body), options.timeoutMs);
    if (reply.kind !== "ok") return failed(reply.kind);
    if (reply.status < 200 || reply.status > 299) return failed("status", `HTTP ${reply.status}`);
    const answer = parseAnswer(reply.text);
    return answer === undefined ? failed("malformed") : { kind: "ok", answer, cached: false };
  }

  return {
    get breakerState() {
      return breaker.state;
    },
    async score(body, cacheKey) {
      const hit = cache?.get(cacheKey);
      if (hit !== undefined) return { kind: "ok", answer: hit, cached: true };
      const ticket = breaker.acquire();
      if (ticket === undefined) return failed("breaker_open");
      const outcome = await call(body);
      if (outcome.kind === "ok") {
        breaker.success(ticket);
        cache?.set(cacheKey, outcome.answer);
      } else {
        breaker.failure(ticket);
      }
      return outcome;
    },
  };
}

function failed(failure: WebhookFailure, detail?: string): WebhookOutcome {
  return detail === undefined ? { kind: "failed", failure } : { kind: "failed", failure, detail };
}

type PostReply =
  | { readonly kind: "ok"; readonly status: number; readonly text: string }
  | { readonly kind: "timeout" | "error" | "malformed" };

/**
 * POSTs JSON to one URL over keep-alive connections (node:http or node:https, a bounded pool),
 * within `timeoutMs` for the whole exchange, body included (an AbortSignal the deadline fires). Node's own
 * client rather than fetch: on this machine fetch cost about 3 times the CPU per call (about
 * 300 us against 100 us, client and a local server together), and every Check on a route that
 * asks pays it. Redirects are not followed (a 3xx is a status failure). Never rejects.
 */
function createJsonPoster(url: string): (body: string, timeoutMs: number) => Promise<PostReply> {
  const target = new URL(url);
  const tls = target.protocol === "https:";
  // sockets a Check's call waits on; idle ones are unref'd by the agent, closed by the server
  const agent = tls
    ? new HttpsAgent({ keepAlive: true, maxSockets: 256 })
    : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const send = tls ? httpsRequest : httpRequest;
  return (body, timeoutMs) =>
    new Promise<PostReply>((done) => {
      // as the store's deadline: a reply that had arrived when the time ran out is read first,
      // so a busy event loop alone does not time the call out (see deadline.ts)
      const controller = new AbortController();
      const { signal } = controller;
      const cancel = afterPendingIo(timeoutMs, () => controller.abort());
      const resolve = (reply: PostReply) => {
        cancel();
        done(reply);
      };
      const req = send(
        target,
        {
          method: "POST",
          agent,
          signal,
          headers: {
            "content-type": "application/json",
            accept: "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) {
              res.destroy();
              resolve({ kind: "malformed" });
              return;
            }
            chunks.push(chunk);
          });
          res.on("end", () => {
            resolve({
              kind: "ok",
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString("utf8"),
            });
          });
          res.on("error", () => resolve({ kind: signal.aborted ? "timeout" : "error" }));
        },
      );
      req.on("error", () => resolve({ kind: signal.aborted ? "timeout" : "error" }));
      req.end(body);
    });
}

/**
 * The response contract: a JSON object with `score` (0..100) or `points` (-100..100, integer),
 * and optionally `reasons` (up to 8 short labels). Anything else is malformed.
 */
export function parseAnswer(text: string): WebhookAnswer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const { score, points, reasons } = value as Record<string, unknown>;
  const okScore = typeof score === "number" && score >= 0 && score <= 100;
  const okPoints =
    typeof points === "number" && Number.isInteger(points) && Math.abs(points) <= 100;
  if (!okScore && !okPoints) return undefined;
  if (score !== undefined && !okScore) return undefined;
  if (points !== undefined && !okPoints) return undefined;
  let labels: string[] = [];
  if (reasons !== undefined) {
    if (!Array.isArray(reasons)) return undefined;
    labels = reasons
      .filter((r): r is string => typeof r === "string" && /^[A-Za-z0-9_.:-]{1,64}$/.test(r))
      .slice(0, 8);
  }
  return {
    ...(okScore ? { score: score as number } : {}),
    ...(okPoints ? { points: points as number } : {}),
    reasons: labels,
  };
}
