import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { type CircuitBreaker, createCircuitBreaker } from "../../circuit-breaker.js";
import type { IntrospectionPolicy } from "../../config/policy-identity.js";
import { deepFreeze } from "../../deep-freeze.js";
import { MAX_TOKEN_BYTES } from "../credentials/credential.js";
import type { Caller } from "../license.js";
import type { IdentitySource, SourceOutcome, SourceRefusal } from "./identity-source.js";

const BEARER = /^\s*bearer\s+(\S+)\s*$/i;
/** A JWT's shape: riskgate verifies those itself. */
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]*$/;

export interface IntrospectionDeps {
  /** The client secret riskgate authenticates to the endpoint with. */
  readonly clientSecret: string;
  readonly callerOf: (claims: Readonly<Record<string, unknown>>) => Caller | undefined;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

type Answer = { ok: true; claims: Readonly<Record<string, unknown>> } | SourceRefusal;

const refuse = (reason: SourceRefusal["reason"], detail: string): SourceRefusal => ({
  kind: "invalid",
  reason,
  detail,
  method: "introspection",
});

/**
 * Opaque access tokens (RFC 7662): a Bearer value that is not a JWT is sent to the policy's
 * introspection endpoint, riskgate authenticating as a client. `active: false` is refused;
 * an active answer's claims go through the policy's claim paths, as a JWT's do. Answers are
 * cached by the token's SHA-256 until its `exp` or `cache_max_seconds`, whichever is first.
 * Calls have a time budget and a circuit breaker; an endpoint down, slow or answering nonsense
 * is `identity.introspection_unavailable`, which the route's failure mode decides.
 */
export function createIntrospectionSource(
  deps: IntrospectionDeps,
  options: IntrospectionPolicy,
): IdentitySource {
  const doFetch = deps.fetch ?? fetch;
  const now = deps.now ?? Date.now;
  const breaker: CircuitBreaker = createCircuitBreaker({
    failures: options.breaker.failures,
    openMs: options.breaker.open_seconds * 1000,
    now,
  });
  const cache = new LRUCache<string, { outcome: SourceOutcome; until: number }>({
    max: options.cache_max_entries,
  });
  const auth = `Basic ${Buffer.from(
    `${encodeURIComponent(options.client_id)}:${encodeURIComponent(deps.clientSecret)}`,
  ).toString("base64")}`;

  async function ask(token: string): Promise<Answer> {
    const call = breaker.acquire();
    if (call === undefined) return refuse("identity.introspection_unavailable", "breaker open");
    try {
      const res = await doFetch(options.endpoint, {
        method: "POST",
        headers: {
          authorization: auth,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body: new URLSearchParams({ token, token_type_hint: "access_token" }).toString(),
        signal: AbortSignal.timeout(options.timeout_ms),
      });
      const body: unknown = res.ok ? await res.json() : undefined;
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        breaker.failure(call);
        return refuse("identity.introspection_unavailable", `endpoint answered ${res.status}`);
      }
      breaker.success(call);
      return { ok: true, claims: deepFreeze({ ...(body as Record<string, unknown>) }) };
    } catch (err) {
      breaker.failure(call);
      const why = (err as Error).name === "TimeoutError" ? "timed out" : "unreachable";
      return refuse("identity.introspection_unavailable", `endpoint ${why}`);
    }
  }

  async function introspect(token: string, key: string): Promise<SourceOutcome> {
    const answer = await ask(token);
    if (!("ok" in answer)) return answer;
    const outcome = outcomeOf(answer.claims, deps.callerOf);
    const nowMs = now();
    const exp = typeof answer.claims.exp === "number" ? answer.claims.exp * 1000 : Infinity;
    const until = Math.min(exp, nowMs + options.cache_max_seconds * 1000);
    if (until > nowMs) cache.set(key, { outcome, until });
    return outcome;
  }

  return {
    method: "introspection",
    identify(req, nowMs) {
      const m = BEARER.exec(req.headers.get("authorization") ?? "");
      const token = m?.[1];
      if (token === undefined || JWT_SHAPE.test(token)) return undefined;
      if (token.length > MAX_TOKEN_BYTES) return refuse("identity.malformed", "token too large");
      const key = createHash("sha256").update(token).digest("hex");
      const hit = cache.get(key);
      if (hit !== undefined && nowMs < hit.until) {
        return hit.outcome.kind === "verified" ? { ...hit.outcome, cached: true } : hit.outcome;
      }
      return introspect(token, key);
    },
  };
}

function outcomeOf(
  claims: Readonly<Record<string, unknown>>,
  callerOf: IntrospectionDeps["callerOf"],
): SourceOutcome {
  if (claims.active !== true) return refuse("identity.inactive_token", "active: false");
  const caller = callerOf(claims);
  if (caller === undefined) return refuse("identity.claims_invalid", "no subject");
  return { kind: "verified", caller, claims, source: "introspection", cached: false };
}
