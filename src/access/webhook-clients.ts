import {
  createScoringWebhook,
  type ScoringWebhook,
  type ScoringWebhookDeps,
  type WebhookOutcome,
} from "../external/scoring-webhook.js";
import type { PolicySnapshot } from "./policy-snapshot.js";
import { webhookRequest } from "./signals/external-webhook.js";
import type { SignalContext } from "./signals/signal.js";

/** One call to the scoring webhook: when it went out and came back, and what it said. */
export interface WebhookCall {
  readonly start: number;
  readonly end: number;
  readonly outcome: WebhookOutcome;
}

/** The scoring webhook clients of the policy snapshots that configure one. */
export interface WebhookClients {
  /** Starts the call for this request (it never rejects); it resolves to its timing and outcome. */
  ask(snapshot: PolicySnapshot, ctx: SignalContext): Promise<WebhookCall>;
}

/**
 * One webhook client (its answer cache and breaker) per policy snapshot, made on first use and
 * dropped with the snapshot: a reload that changes the webhook's settings starts afresh.
 * `pseudonym` names the subject and org sent out (unless the policy says `plain_subject`).
 */
export function createWebhookClients(
  pseudonym: (value: string) => string,
  deps: ScoringWebhookDeps | undefined,
): WebhookClients {
  const clients = new WeakMap<PolicySnapshot, ScoringWebhook>();
  const clientOf = (snapshot: PolicySnapshot): ScoringWebhook => {
    let client = clients.get(snapshot);
    if (client === undefined) {
      const cfg = snapshot.policy.doc.signals.scoring_webhook;
      client = createScoringWebhook(
        {
          url: cfg.url ?? "",
          timeoutMs: cfg.timeout_ms,
          cacheTtlMs: cfg.cache.ttl_seconds * 1000,
          cacheMax: cfg.cache.max_entries,
          breakerFailures: cfg.breaker.failures,
          breakerOpenMs: cfg.breaker.open_seconds * 1000,
        },
        deps,
      );
      clients.set(snapshot, client);
    }
    return client;
  };
  return {
    ask(snapshot, ctx) {
      const { body, cacheKey } = webhookRequest(ctx, pseudonym);
      const start = performance.now();
      return clientOf(snapshot)
        .score(body, cacheKey)
        .then((outcome) => ({ start, end: performance.now(), outcome }));
    },
  };
}
