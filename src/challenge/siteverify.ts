import { type CircuitBreaker, createCircuitBreaker } from "../circuit-breaker.js";
import type { InteractivePolicy } from "../config/policy-schema.js";

/** A CAPTCHA provider riskgate verifies with. */
export type CaptchaProvider = "turnstile" | "hcaptcha" | "recaptcha";

/**
 * Each provider's documented siteverify endpoint, widget script, widget class and the form
 * field its widget fills (Cloudflare Turnstile, hCaptcha and Google reCAPTCHA v2 docs).
 */
export const PROVIDERS: Readonly<
  Record<CaptchaProvider, { verifyUrl: string; script: string; widgetClass: string; field: string }>
> = Object.freeze({
  turnstile: {
    verifyUrl: "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    script: "https://challenges.cloudflare.com/turnstile/v0/api.js",
    widgetClass: "cf-turnstile",
    field: "cf-turnstile-response",
  },
  hcaptcha: {
    verifyUrl: "https://api.hcaptcha.com/siteverify",
    script: "https://js.hcaptcha.com/1/api.js",
    widgetClass: "h-captcha",
    field: "h-captcha-response",
  },
  recaptcha: {
    verifyUrl: "https://www.google.com/recaptcha/api/siteverify",
    script: "https://www.google.com/recaptcha/api.js",
    widgetClass: "g-recaptcha",
    field: "g-recaptcha-response",
  },
});

/**
 * A siteverify answer: `passed`; `failed` with the provider's `error-codes` (or
 * `hostname-mismatch`); or `unavailable` (timeout, network error, a non-2xx or non-JSON answer,
 * or the breaker open), where the route's failure mode decides.
 */
export type SiteverifyResult =
  | { readonly kind: "passed" }
  | { readonly kind: "failed"; readonly codes: readonly string[] }
  | { readonly kind: "unavailable"; readonly why: "timeout" | "error" | "breaker_open" };

export interface SiteverifyCall {
  readonly provider: CaptchaProvider;
  readonly cfg: InteractivePolicy["captcha"];
  readonly secret: string;
  /** The token the widget put in the form. */
  readonly response: string;
  readonly remoteIp: string;
  /** The host the challenge was issued for; a different `hostname` in the answer fails. */
  readonly host: string;
}

export interface SiteVerifier {
  verify(call: SiteverifyCall): Promise<SiteverifyResult>;
}

export interface SiteVerifierDeps {
  readonly fetch?: typeof fetch;
  /** Wall clock for the breaker (ms). */
  readonly clock?: () => number;
}

/**
 * Verifies CAPTCHA answers with the provider's siteverify: a form POST of `secret`, `response`
 * and `remoteip`, read as JSON `success`, `hostname` and `error-codes`, within `timeout_ms`.
 * The shared circuit breaker, one per verify URL, opens after `breaker_failures` consecutive
 * unavailable answers and stays open `breaker_open_seconds`; then one call probes (half-open).
 */
export function createSiteVerifier(deps: SiteVerifierDeps = {}): SiteVerifier {
  const doFetch = deps.fetch ?? fetch;
  const clock = deps.clock ?? Date.now;
  // one breaker per verify URL (and its settings, which a policy reload may change)
  const breakers = new Map<string, CircuitBreaker>();
  return {
    async verify(call) {
      const url = call.cfg.verify_url ?? PROVIDERS[call.provider].verifyUrl;
      const key = `${url} ${call.cfg.breaker_failures} ${call.cfg.breaker_open_seconds}`;
      let breaker = breakers.get(key);
      if (breaker === undefined) {
        breaker = createCircuitBreaker({
          failures: call.cfg.breaker_failures,
          openMs: call.cfg.breaker_open_seconds * 1000,
          now: clock,
        });
        breakers.set(key, breaker);
      }
      const ticket = breaker.acquire();
      if (ticket === undefined) return { kind: "unavailable", why: "breaker_open" };
      const result = await post(doFetch, url, call);
      if (result.kind === "unavailable") breaker.failure(ticket);
      else breaker.success(ticket);
      return result;
    },
  };
}

async function post(
  doFetch: typeof fetch,
  url: string,
  call: SiteverifyCall,
): Promise<SiteverifyResult> {
  const body = new URLSearchParams({ secret: call.secret, response: call.response });
  if (call.remoteIp !== "") body.set("remoteip", call.remoteIp);
  let answer: unknown;
  try {
    const res = await doFetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: body.toString(),
      signal: AbortSignal.timeout(call.cfg.timeout_ms),
      redirect: "error",
    });
    if (!res.ok) return { kind: "unavailable", why: "error" };
    answer = await res.json();
  } catch (err) {
    const name = (err as { name?: string }).name;
    return { kind: "unavailable", why: name === "TimeoutError" ? "timeout" : "error" };
  }
  const a = answer as { success?: unknown; hostname?: unknown; "error-codes"?: unknown };
  const codes = Array.isArray(a?.["error-codes"])
    ? a["error-codes"].filter((c): c is string => typeof c === "string")
    : [];
  if (a?.success !== true) return { kind: "failed", codes };
  if (typeof a.hostname === "string" && a.hostname.toLowerCase() !== call.host.toLowerCase()) {
    return { kind: "failed", codes: ["hostname-mismatch"] };
  }
  return { kind: "passed" };
}
