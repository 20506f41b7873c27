import { z } from "zod";
import { externalBand, seconds } from "../../config/policy-fields.js";
import type { WebhookAnswer, WebhookRequest } from "../../external/scoring-webhook.js";
import type { Reason } from "../reasons.js";
import { networkOf } from "./network.js";
import { type SignalContext, section } from "./signal.js";

/**
 * `signals.scoring_webhook`: a fraud-scoring service riskgate POSTs the request's context to,
 * on routes that set `scoring_webhook: true`, in parallel with the store read. No evaluator of
 * the registry: the score phase asks it (phases/score.ts), since its answer comes later.
 */
export const scoringWebhookSection = section(
  "scoring_webhook",
  z
    .strictObject({
      enabled: z.boolean().default(false),
      url: z.url().optional(),
      /** The call's own budget; past it the route's failure mode decides. */
      timeout_ms: z.number().int().positive().max(5000).default(50),
      /** Send the subject and org as they are instead of their HMAC pseudonyms (RISKGATE_SUBJECT_SALT). */
      plain_subject: z.boolean().default(false),
      cache: z
        .strictObject({
          /** How long one answer is reused for the same subject and network (0 = no cache). */
          ttl_seconds: seconds.default(60),
          max_entries: z.number().int().positive().default(10_000),
        })
        .prefault({}),
      breaker: z
        .strictObject({
          /** Consecutive failures that open the breaker. */
          failures: z.number().int().positive().default(5),
          /** How long it stays open before one probe call may try. */
          open_seconds: z.number().int().positive().default(10),
        })
        .prefault({}),
      /**
       * A `score` (0-100) maps by the first band holding it; an answer with `points` uses them as
       * is. The default scales a service's 0-100 fraud score like the thresholds: 60 points alone
       * reach a challenge (40) but not a deny (80).
       */
      bands: z.array(externalBand).default([
        // first match wins: 90+ is near-certain fraud, 70+ likely, 50+ doubtful
        { min: 90, max: 100, points: 60 },
        { min: 70, max: 100, points: 30 },
        { min: 50, max: 100, points: 10 },
      ]),
    })
    .refine((w) => !w.enabled || w.url !== undefined, { message: "set url when enabled" })
    .prefault({}),
  {
    // `external.webhook` by default, or the reason a band names
    *externalNames(cfg) {
      yield "webhook";
      for (const band of cfg.bands) if (band.reason !== undefined) yield band.reason;
    },
    check: (cfg, doc) =>
      cfg.enabled && cfg.timeout_ms >= doc.failure.budget_ms
        ? [
            {
              message: `timeout_ms must be below failure.budget_ms (${doc.failure.budget_ms})`,
              path: ["signals", "scoring_webhook", "timeout_ms"],
            },
          ]
        : [],
  },
);

type WebhookPolicy = z.output<typeof scoringWebhookSection.schema>;

/** Does this request ask the scoring webhook? Only routes that set `scoring_webhook: true`. */
export function wantsWebhook(ctx: SignalContext): boolean {
  return ctx.policy.doc.signals.scoring_webhook.enabled && ctx.route.rule?.scoring_webhook === true;
}

/**
 * The request's context for the scoring service and the cache key of its answer (subject and
 * network: the same caller from the same network gets the same answer for the cache's TTL).
 * Subject and org go out as their pseudonyms (`pseudonym`) unless `plain_subject`.
 */
export function webhookRequest(
  ctx: SignalContext,
  pseudonym: (value: string) => string,
): { body: WebhookRequest; cacheKey: string } {
  const cfg = ctx.policy.doc.signals.scoring_webhook;
  const { caller, req } = ctx;
  const name = (v: string) => (cfg.plain_subject || v === "" ? v : pseudonym(v));
  const network = networkOf(req.clientIp) ?? "";
  const location = ctx.location();
  const ua = req.headers.get("user-agent");
  const body: WebhookRequest = {
    request_id: req.id,
    subject: name(caller.subject),
    org: name(caller.org),
    tier: ctx.tierName,
    route: ctx.route.name,
    method: req.method,
    host: req.host,
    path: req.path,
    client_ip: req.clientIp,
    network,
    ...(location?.country === undefined ? {} : { country: location.country }),
    ...(location?.asn === undefined ? {} : { asn: location.asn }),
    ...(ua === undefined ? {} : { user_agent: ua.slice(0, 512) }),
    client_class: ctx.clientClass,
    anonymous: caller.anonymous,
  };
  return { body, cacheKey: `${caller.subject}\u0000${network}` };
}

/** The answer as reasons: `points` as given, else `score` through the policy's bands. */
export function webhookReasons(cfg: WebhookPolicy, answer: WebhookAnswer): Reason[] {
  const said = answer.reasons.length === 0 ? "" : ` (${answer.reasons.join(",")})`;
  if (answer.points !== undefined) {
    if (answer.points === 0) return [];
    return [
      { code: "external.webhook", points: answer.points, detail: `points=${answer.points}${said}` },
    ];
  }
  const score = answer.score as number;
  const band = cfg.bands.find((b) => score >= b.min && score <= b.max);
  if (band === undefined) return [];
  return [
    {
      code: `external.${band.reason ?? "webhook"}`,
      points: band.points,
      detail: `score=${score}${said}`,
    },
  ];
}
