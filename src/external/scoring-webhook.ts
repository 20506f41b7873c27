import { LRUCache } from "lru-cache";
import { type BreakerState, createCircuitBreaker } from "./circuit-breaker.js";

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
  /** Node's fetch by default. */
  readonly fetch?: typeof fetch;
  /** Breaker clock (ms); performance.now by default. */
  readonly now?: () => number;
  onBreakerState?(state: BreakerState): void;
}

export interface ScoringWebhook {
  /** Asks the service (or the cache). Never rejects: a failure is an outcome. */
  score(body: WebhookRequest, cacheKey: string): Promise<WebhookOutcome>;
  readonly breakerState: BreakerState;
  /**
   * Loads Node's fetch (undici loads on the first call, tens of ms: more than a webhook's
   * budget) without touching the service. Never rejects.
   */
  warm(): void;
}

/** Answers larger than this are malformed: a scoring answer is a few dozen bytes. */
const MAX_ANSWER_BYTES = 16 * 1024;

/**
 * A client of one fraud-scoring service: a JSON POST with its own time budget
 * (`AbortSignal.timeout`), an LRU cache of answers keyed by subject and network with a TTL, and a
 * circuit breaker, so a slow or failing service costs at most its budget, and once the breaker
 * opens, nothing.
 */
export function createScoringWebhook(
  options: ScoringWebhookOptions,
  deps: ScoringWebhookDeps = {},
): ScoringWebhook {
  const doFetch = deps.fetch ?? fetch;
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

  async function call(body: WebhookRequest): Promise<WebhookOutcome> {
    let res: Response;
    try {
      res = await doFetch(options.url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
        redirect: "error",
      });
    } catch (err) {
      return failed(isTimeout(err) ? "timeout" : "error");
    }
    try {
      if (res.status < 200 || res.status > 299) {
        await res.body?.cancel();
        return failed("status", `HTTP ${res.status}`);
      }
      const text = await res.text();
      if (text.length > MAX_ANSWER_BYTES) return failed("malformed", "answer too large");
      const answer = parseAnswer(text);
      return answer === undefined ? failed("malformed") : { kind: "ok", answer, cached: false };
    } catch (err) {
      // the budget can run out while the body is read
      return failed(isTimeout(err) ? "timeout" : "error");
    }
  }

  return {
    get breakerState() {
      return breaker.state;
    },
    warm() {
      doFetch("data:application/json,{}")
        .then((res) => res.body?.cancel())
        .catch(() => {});
    },
    async score(body, cacheKey) {
      const hit = cache?.get(cacheKey);
      if (hit !== undefined) return { kind: "ok", answer: hit, cached: true };
      const ticket = breaker.acquire();
      if (ticket === undefined) return failed("breaker_open");
      const outcome = await call(body);
      if (outcome.kind === "ok") {
        breaker.success();
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

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
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
