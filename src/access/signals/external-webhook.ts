import type { PolicyDocument } from "../../config/policy-schema.js";
import type { WebhookAnswer, WebhookRequest } from "../../external/scoring-webhook.js";
import type { Reason } from "../reasons.js";
import { networkOf } from "./network.js";
import type { SignalContext } from "./signal.js";

type WebhookPolicy = PolicyDocument["signals"]["scoring_webhook"];

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
