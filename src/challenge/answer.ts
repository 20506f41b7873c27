import { randomBytes } from "node:crypto";
import { decodeJwt } from "jose";
import type { Policy } from "../access/policy.js";
import { ANONYMOUS_CLEARANCE_PREFIX } from "../access/signals/clearance.js";
import type { Store, SwapReading } from "../state/store.js";
import type { Logger } from "../telemetry/logger.js";
import { bindingOf } from "./binding.js";
import type { ClearanceKeys } from "./keys.js";
import type { ChallengeOutcome } from "./outcome.js";
import { captchaPage, messagePage, type Page, powPage } from "./page.js";
import { verifyPow } from "./pow.js";
import { safeReturn } from "./return-target.js";
import { type CaptchaProvider, PROVIDERS, type SiteVerifier } from "./siteverify.js";
import { type ChallengeClaims, signClearance, verifyChallenge } from "./tokens.js";

/** One request to the challenge page, as the HTTP listener read it. */
export interface ChallengeHit {
  readonly method: string;
  /** Query parameters (GET) or the urlencoded form (POST). */
  readonly params: URLSearchParams;
  readonly clientIp: string;
  readonly userAgent: string | undefined;
  readonly now: number;
}

/** What answering a challenge needs: the service's dependencies and its outcome counter. */
export interface AnswerContext {
  readonly keys: ClearanceKeys;
  readonly store: Store;
  readonly siteverify: SiteVerifier;
  readonly captchaSecret: string;
  readonly logger: Logger;
  count(mechanism: string, outcome: ChallengeOutcome): void;
}

/** Serves the challenge page (GET) or checks an answer (POST) and sets the clearance. */
export async function serveChallenge(
  ctx: AnswerContext,
  hit: ChallengeHit,
  policy: Policy,
): Promise<Page> {
  const cfg = policy.doc.decisions.challenge.interactive;
  const claims = await challengeOf(ctx, hit);
  if (!("nonce" in claims)) return claims;
  if (hit.method === "GET" || hit.method === "HEAD") {
    if (claims.mechanism === "pow")
      return powPage(hit.params.get("c") ?? "", claims.nonce, claims.bits);
    return captchaPage(
      hit.params.get("c") ?? "",
      claims.mechanism as CaptchaProvider,
      cfg.captcha.site_key,
    );
  }
  const refused = await spendNonce(ctx, claims, hit);
  if (refused !== undefined) return refused;
  if (claims.mechanism === "pow") {
    if (!verifyPow(claims.nonce, hit.params.get("answer") ?? "", claims.bits)) {
      ctx.count("pow", "failed");
      return messagePage(
        403,
        "The check did not pass",
        "Reload the page to try again.",
        safeReturn(claims.ret),
      );
    }
    return pass(ctx, claims, "pow", hit, policy);
  }
  return answerCaptcha(ctx, claims, hit, policy);
}

/**
 * Single use: the first answer to a nonce spends it, right or wrong. The page to answer with
 * when the nonce was already spent or could not be recorded; undefined when it is fresh.
 */
async function spendNonce(
  ctx: AnswerContext,
  claims: ChallengeClaims,
  hit: ChallengeHit,
): Promise<Page | undefined> {
  const retry = safeReturn(claims.ret);
  let used: boolean;
  try {
    const ttlMs = Math.max(1000, claims.exp * 1000 - hit.now);
    const { results } = await ctx.store.exec({
      ops: [{ op: "swap", key: { tag: `ch:${claims.nonce}`, name: "used" }, value: "1", ttlMs }],
      now: hit.now,
    });
    used = (results[0] as SwapReading | undefined)?.previous != null;
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, "challenge nonce not recorded; refused");
    ctx.count(claims.mechanism, "unavailable");
    return messagePage(
      503,
      "Please try again",
      "The check could not be completed right now.",
      retry,
    );
  }
  if (!used) return undefined;
  ctx.count(claims.mechanism, "reused");
  return messagePage(
    403,
    "This check was already used",
    "Reload the page to get a new one.",
    retry,
  );
}

/** Checks a CAPTCHA answer with the provider's siteverify. */
async function answerCaptcha(
  ctx: AnswerContext,
  claims: ChallengeClaims,
  hit: ChallengeHit,
  policy: Policy,
): Promise<Page> {
  const cfg = policy.doc.decisions.challenge.interactive;
  const retry = safeReturn(claims.ret);
  const provider = claims.mechanism as CaptchaProvider;
  const response = hit.params.get(PROVIDERS[provider]?.field ?? "") ?? "";
  if (PROVIDERS[provider] === undefined || response === "") {
    ctx.count(provider, "failed");
    return messagePage(403, "The check did not pass", "Complete the check and continue.", retry);
  }
  const result =
    ctx.captchaSecret === ""
      ? ({ kind: "unavailable", why: "error" } as const)
      : await ctx.siteverify.verify({
          provider,
          cfg: cfg.captcha,
          secret: ctx.captchaSecret,
          response,
          remoteIp: hit.clientIp,
          host: claims.host,
        });
  if (result.kind === "passed") return pass(ctx, claims, provider, hit, policy);
  if (result.kind === "failed") {
    ctx.logger.info({ provider, codes: result.codes }, "CAPTCHA answer refused");
    ctx.count(provider, "failed");
    return messagePage(403, "The check did not pass", "Reload the page to try again.", retry);
  }
  ctx.logger.warn({ provider, why: result.why }, "CAPTCHA siteverify unavailable");
  ctx.count(provider, "unavailable");
  // the route's failure mode, decided when the challenge was issued
  if (claims.failOpen) return pass(ctx, claims, `${provider}-unverified`, hit, policy);
  return messagePage(503, "Please try again", "The check could not be verified right now.", retry);
}

/** The redirect back with a signed clearance cookie. */
async function pass(
  ctx: AnswerContext,
  claims: ChallengeClaims,
  kind: string,
  hit: ChallengeHit,
  policy: Policy,
): Promise<Page> {
  const cfg = policy.doc.decisions.challenge.interactive.clearance;
  if (!kind.endsWith("-unverified")) ctx.count(claims.mechanism, "passed");
  const sub =
    claims.sub !== ""
      ? claims.sub
      : `${ANONYMOUS_CLEARANCE_PREFIX}${randomBytes(12).toString("base64url")}`;
  const token = await signClearance(
    ctx.keys,
    { sub, kind, net: claims.net, uah: claims.uah },
    hit.now,
    cfg.ttl_seconds,
  );
  const cookie = `${cfg.cookie}=${token}; Path=/; Max-Age=${cfg.ttl_seconds}; HttpOnly; SameSite=Lax${cfg.secure ? "; Secure" : ""}`;
  return {
    status: 303,
    headers: [
      ["location", safeReturn(claims.ret)],
      ["set-cookie", cookie],
      ["cache-control", "no-store"],
      ["content-type", "text/plain; charset=utf-8"],
    ],
    body: "",
  };
}

/** The signed challenge of a hit, checked for this client; a page when it is not usable. */
async function challengeOf(ctx: AnswerContext, hit: ChallengeHit): Promise<ChallengeClaims | Page> {
  const token = hit.params.get("c") ?? "";
  const claims = await verifyChallenge(ctx.keys, token, hit.now);
  if (claims === "forged") {
    ctx.count("unknown", "invalid");
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
    ctx.count("unknown", "expired");
    return messagePage(403, "This check has expired", "Reload the page to get a new one.", ret);
  }
  const here = bindingOf(hit.clientIp, hit.userAgent);
  if (here.net !== claims.net || here.uah !== claims.uah) {
    ctx.count(claims.mechanism, "invalid");
    return messagePage(
      403,
      "This check belongs to another browser",
      "It was issued to another network or browser. Reload the page to get your own.",
      safeReturn(claims.ret),
    );
  }
  return claims;
}
