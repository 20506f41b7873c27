import { randomBytes } from "node:crypto";
import { decodeJwt } from "jose";
import { cookieValue } from "../access/cookies.js";
import { failureLetsThrough } from "../access/failure.js";
import type { Decision, Pipeline } from "../access/pipeline.js";
import type { Policy } from "../access/policy.js";
import type { AccessRequest } from "../access/request.js";
import { ANONYMOUS_CLEARANCE_PREFIX } from "../access/signals/clearance.js";
import type { Verdict } from "../access/verdict.js";
import type { Store, SwapReading } from "../state/store.js";
import type { Logger } from "../telemetry/logger.js";
import { bindingOf } from "./binding.js";
import type { ClearanceKeys } from "./keys.js";
import type { ChallengeOutcome } from "./outcome.js";
import { CHALLENGE_PATH, captchaPage, messagePage, type Page, powPage } from "./page.js";
import { powBits, verifyPow } from "./pow.js";
import { type CaptchaProvider, PROVIDERS, type SiteVerifier } from "./siteverify.js";
import {
  type ChallengeClaims,
  readClearance,
  signChallenge,
  signClearance,
  verifyChallenge,
} from "./tokens.js";

export interface ChallengeServiceDeps {
  readonly keys: ClearanceKeys;
  /** Where used nonces are remembered (single use across replicas with Redis). */
  readonly store: Store;
  readonly siteverify: SiteVerifier;
  /** The CAPTCHA provider's secret (RISKGATE_CAPTCHA_SECRET_FILE); "" when none. */
  readonly captchaSecret: string;
  readonly logger: Logger;
  /** Told of every step (metrics); its errors are swallowed. */
  onOutcome?(mechanism: string, outcome: ChallengeOutcome): void;
}

/** One request to the challenge page, as the HTTP listener read it. */
export interface ChallengeHit {
  readonly method: string;
  /** Query parameters (GET) or the urlencoded form (POST). */
  readonly params: URLSearchParams;
  readonly clientIp: string;
  readonly userAgent: string | undefined;
  readonly now: number;
}

/** Issues and checks browser challenges, and reads clearance cookies. */
export interface ChallengeService {
  /**
   * The request with its clearance cookie read (`req.clearance`), or the same request, at once,
   * when it carries none (the hot path pays no extra await).
   */
  withClearance(req: AccessRequest, policy: Policy): AccessRequest | Promise<AccessRequest>;
  /** Signs a challenge for an interactive verdict; returns the page's same-host location. */
  issue(verdict: Verdict, req: AccessRequest, decision: Decision, policy: Policy): Promise<string>;
  /** Serves the challenge page (GET) or checks an answer (POST) and sets the clearance. */
  serve(hit: ChallengeHit, policy: Policy): Promise<Page>;
}

/**
 * A return target riskgate will redirect to: an origin-form path on the same host. Anything
 * else (an absolute or scheme-relative URL, a backslash, control characters, the challenge
 * page itself) becomes `/`, so a challenge can never be an open redirect.
 */
export function safeReturn(target: string): string {
  if (
    target.length > 2048 ||
    !target.startsWith("/") ||
    target.startsWith("//") ||
    hasControlOrBackslash(target) ||
    target.startsWith(CHALLENGE_PATH)
  ) {
    return "/";
  }
  return target;
}

function hasControlOrBackslash(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return true;
  }
  return false;
}

/** The challenge service over riskgate's own keys, the store and a siteverify client. */
export function createChallengeService(deps: ChallengeServiceDeps): ChallengeService {
  const { keys } = deps;
  const count = (mechanism: string, outcome: ChallengeOutcome) => {
    try {
      deps.onOutcome?.(mechanism, outcome);
    } catch {
      // an observer's bug must not break the page
    }
  };

  async function pass(claims: ChallengeClaims, kind: string, hit: ChallengeHit, policy: Policy) {
    const cfg = policy.doc.decisions.challenge.interactive.clearance;
    if (!kind.endsWith("-unverified")) count(claims.mechanism, "passed");
    const sub =
      claims.sub !== ""
        ? claims.sub
        : `${ANONYMOUS_CLEARANCE_PREFIX}${randomBytes(12).toString("base64url")}`;
    const token = await signClearance(
      keys,
      { sub, kind, net: claims.net, uah: claims.uah },
      hit.now,
      cfg.ttl_seconds,
    );
    const cookie = `${cfg.cookie}=${token}; Path=/; Max-Age=${cfg.ttl_seconds}; HttpOnly; SameSite=Lax${cfg.secure ? "; Secure" : ""}`;
    const page: Page = {
      status: 303,
      headers: [
        ["location", safeReturn(claims.ret)],
        ["set-cookie", cookie],
        ["cache-control", "no-store"],
        ["content-type", "text/plain; charset=utf-8"],
      ],
      body: "",
    };
    return page;
  }

  /** The signed challenge of a hit, checked for this client; a page when it is not usable. */
  async function challengeOf(hit: ChallengeHit): Promise<ChallengeClaims | Page> {
    const token = hit.params.get("c") ?? "";
    const claims = await verifyChallenge(keys, token, hit.now);
    if (claims === "forged") {
      count("unknown", "invalid");
      return messagePage(400, "This check is not valid", "Go back and reload the page.", "/");
    }
    if (claims === "expired") {
      let ret = "/";
      try {
        const r = decodeJwt(token).ret;
        if (typeof r === "string") ret = safeReturn(r);
      } catch {
        // unreadable: back to the start
      }
      count("unknown", "expired");
      return messagePage(403, "This check has expired", "Reload the page to get a new one.", ret);
    }
    const here = bindingOf(hit.clientIp, hit.userAgent);
    if (here.net !== claims.net || here.uah !== claims.uah) {
      count(claims.mechanism, "invalid");
      return messagePage(
        403,
        "This check belongs to another browser",
        "It was issued to another network or browser. Reload the page to get your own.",
        safeReturn(claims.ret),
      );
    }
    return claims;
  }

  return {
    withClearance(req, policy) {
      const cfg = policy.doc.decisions.challenge.interactive.clearance;
      const token = cookieValue(req.headers.get("cookie"), cfg.cookie);
      if (token === undefined || token === "") return req;
      const binding = bindingOf(req.clientIp, req.headers.get("user-agent"));
      return readClearance(keys, token, binding, req.receivedAt).then((clearance) => ({
        ...req,
        clearance,
      }));
    },

    async issue(verdict, req, decision, policy) {
      const cfg = policy.doc.decisions.challenge.interactive;
      const caller = decision.caller;
      const target = req.query === "" ? req.path : `${req.path}?${req.query}`;
      const token = await signChallenge(keys, {
        nonce: randomBytes(16).toString("base64url"),
        mechanism: cfg.mechanism,
        bits: powBits(verdict.score, cfg.pow),
        ret: safeReturn(target),
        host: req.host,
        sub: caller === undefined || caller.anonymous ? "" : caller.subject,
        ...bindingOf(req.clientIp, req.headers.get("user-agent")),
        failOpen: failureLetsThrough(decision.failureMode, req),
        exp: Math.floor(req.receivedAt / 1000) + cfg.ttl_seconds,
      });
      count(cfg.mechanism, "issued");
      return `${CHALLENGE_PATH}?c=${token}`;
    },

    async serve(hit, policy) {
      const cfg = policy.doc.decisions.challenge.interactive;
      const claims = await challengeOf(hit);
      if (!("nonce" in claims)) return claims;
      const retry = safeReturn(claims.ret);
      if (hit.method === "GET" || hit.method === "HEAD") {
        if (claims.mechanism === "pow")
          return powPage(hit.params.get("c") ?? "", claims.nonce, claims.bits);
        return captchaPage(
          hit.params.get("c") ?? "",
          claims.mechanism as CaptchaProvider,
          cfg.captcha.site_key,
        );
      }
      // single use: the first answer to a nonce spends it, right or wrong
      let used: boolean;
      try {
        const ttlMs = Math.max(1000, claims.exp * 1000 - hit.now);
        const { results } = await deps.store.exec({
          ops: [
            { op: "swap", key: { tag: `ch:${claims.nonce}`, name: "used" }, value: "1", ttlMs },
          ],
          now: hit.now,
        });
        used = (results[0] as SwapReading | undefined)?.previous != null;
      } catch (err) {
        deps.logger.warn({ err: (err as Error).message }, "challenge nonce not recorded; refused");
        count(claims.mechanism, "unavailable");
        return messagePage(
          503,
          "Please try again",
          "The check could not be completed right now.",
          retry,
        );
      }
      if (used) {
        count(claims.mechanism, "reused");
        return messagePage(
          403,
          "This check was already used",
          "Reload the page to get a new one.",
          retry,
        );
      }
      if (claims.mechanism === "pow") {
        if (!verifyPow(claims.nonce, hit.params.get("answer") ?? "", claims.bits)) {
          count("pow", "failed");
          return messagePage(403, "The check did not pass", "Reload the page to try again.", retry);
        }
        return pass(claims, "pow", hit, policy);
      }
      const provider = claims.mechanism as CaptchaProvider;
      const response = hit.params.get(PROVIDERS[provider]?.field ?? "") ?? "";
      if (PROVIDERS[provider] === undefined || response === "") {
        count(provider, "failed");
        return messagePage(
          403,
          "The check did not pass",
          "Complete the check and continue.",
          retry,
        );
      }
      const result =
        deps.captchaSecret === ""
          ? ({ kind: "unavailable", why: "error" } as const)
          : await deps.siteverify.verify({
              provider,
              cfg: cfg.captcha,
              secret: deps.captchaSecret,
              response,
              remoteIp: hit.clientIp,
              host: claims.host,
            });
      if (result.kind === "passed") return pass(claims, provider, hit, policy);
      if (result.kind === "failed") {
        deps.logger.info({ provider, codes: result.codes }, "CAPTCHA answer refused");
        count(provider, "failed");
        return messagePage(403, "The check did not pass", "Reload the page to try again.", retry);
      }
      deps.logger.warn({ provider, why: result.why }, "CAPTCHA siteverify unavailable");
      count(provider, "unavailable");
      // the route's failure mode, decided when the challenge was issued
      if (claims.failOpen) return pass(claims, `${provider}-unverified`, hit, policy);
      return messagePage(
        503,
        "Please try again",
        "The check could not be verified right now.",
        retry,
      );
    },
  };
}

/**
 * The pipeline with browser challenges around it: a clearance cookie is read before the
 * decision (the `challenge.clearance` signal scores it), and an interactive challenge gets a
 * signed challenge and the page's location after it. Transports call this one.
 */
export function withChallenges(inner: Pipeline, service: ChallengeService): Pipeline {
  return {
    evaluate(runtime, req, trace) {
      const withPage = async (read: AccessRequest, decision: Decision): Promise<Decision> => {
        const v = decision.verdict;
        if (v.kind !== "challenge" || v.style !== "interactive") return decision;
        const location = await service.issue(v, read, decision, runtime.policy);
        return { ...decision, verdict: { ...v, location } };
      };
      const read = service.withClearance(req, runtime.policy);
      if (read instanceof Promise) {
        return read.then((r) => inner.evaluate(runtime, r, trace).then((d) => withPage(r, d)));
      }
      return inner.evaluate(runtime, read, trace).then((d) => {
        const v = d.verdict;
        // the common case (no page to issue) resolves with the pipeline's own decision
        return v.kind === "challenge" && v.style === "interactive" ? withPage(read, d) : d;
      });
    },
  };
}
