import { randomBytes } from "node:crypto";
import { cookieValue } from "../access/cookies.js";
import { failureLetsThrough } from "../access/failure.js";
import type { Decision, Pipeline } from "../access/pipeline.js";
import type { Policy } from "../access/policy.js";
import type { AccessRequest } from "../access/request.js";
import type { Verdict } from "../access/verdict.js";
import type { Store } from "../state/store.js";
import type { Logger } from "../telemetry/logger.js";
import { type AnswerContext, type ChallengeHit, serveChallenge } from "./answer.js";
import { bindingOf } from "./binding.js";
import type { ClearanceKeys } from "./keys.js";
import type { ChallengeOutcome } from "./outcome.js";
import { CHALLENGE_PATH, type Page } from "./page.js";
import { powBits } from "./pow.js";
import { safeReturn } from "./return-target.js";
import type { SiteVerifier } from "./siteverify.js";
import { readClearance, signChallenge } from "./tokens.js";

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

/** The challenge service over riskgate's own keys, the store and a siteverify client. */
export function createChallengeService(deps: ChallengeServiceDeps): ChallengeService {
  const { keys } = deps;
  const ctx: AnswerContext = {
    keys,
    store: deps.store,
    siteverify: deps.siteverify,
    captchaSecret: deps.captchaSecret,
    logger: deps.logger,
    count(mechanism, outcome) {
      try {
        deps.onOutcome?.(mechanism, outcome);
      } catch {
        // an observer's bug must not break the page
      }
    },
  };

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
      ctx.count(cfg.mechanism, "issued");
      return `${CHALLENGE_PATH}?c=${token}`;
    },

    serve: (hit, policy) => serveChallenge(ctx, hit, policy),
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
