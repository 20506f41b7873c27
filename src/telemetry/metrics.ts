import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { StageTimings } from "../access/pipeline.js";
import type { ChallengeOutcome } from "../challenge/outcome.js";
import type { DecisionEvent, Refusal } from "./decision-event.js";

/**
 * Latency buckets, in seconds: 50 us to 250 ms (Envoy's usual ext_authz timeout), fine below
 * 2 ms where riskgate's own target (p99 < 1 ms) lives.
 */
const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
  0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
];

/** Outbound calls (the scoring webhook), in seconds: 1 ms to 2.5 s. */
const CALL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5];

/** The store circuit breaker's states, as the gauge encodes them. */
const BREAKER = { closed: 0, half_open: 1, open: 2 } as const;

export interface Metrics {
  readonly registry: Registry;
  decision(event: DecisionEvent): void;
  storeCall(ms: number, ok: boolean): void;
  breakerState(state: keyof typeof BREAKER): void;
  /** The scoring webhook's circuit breaker changed state. */
  webhookBreakerState(state: keyof typeof BREAKER): void;
  jwks(event: "refresh" | "failure"): void;
  tokenVerification(ok: boolean): void;
  policyReload(ok: boolean): void;
  inflight(delta: 1 | -1): void;
  auditDropped(): void;
  /** One step of a browser challenge (see ChallengeOutcome). */
  challenge(mechanism: string, outcome: ChallengeOutcome): void;
  /** A Check answered without a decision: shed (overloaded) or its caller gone. */
  refused(why: Refusal, transport: "grpc" | "http"): void;
}

/**
 * Prometheus metrics on a registry of riskgate's own (never the global one), named by
 * Prometheus conventions with units. Every label is bounded: outcomes, tiers and routes come
 * from the policy, reasons from the closed reason-code registry; nothing per subject or IP.
 * Gauges say how `--workers` processes combine (`aggregator`), for the cluster scrape.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  // prom-client's process_* and nodejs_* metrics: RSS, heap, event-loop lag, GC pauses; they
  // are read at scrape time (GC pauses as they happen) and carry their own cluster aggregators
  collectDefaultMetrics({ register: registry });
  const decision = decisionMetrics(registry);
  const storeCall = storeMetrics(registry);
  const breaker = new Gauge({
    name: "riskgate_store_breaker_state",
    help: "Store circuit breaker: 0 closed, 1 half open, 2 open.",
    aggregator: "max",
    registers: [registry],
  });
  const jwks = new Counter({
    name: "riskgate_jwks_fetches_total",
    help: "JWKS fetches by outcome (ok: keys refreshed, error: the last good keys stay).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const verifications = new Counter({
    name: "riskgate_token_verifications_total",
    help: "JWT signature verifications by outcome; tokens served from the verified-token cache are not counted.",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const reloads = new Counter({
    name: "riskgate_policy_reloads_total",
    help: "Policy reloads by outcome (a failed one keeps the last good policy).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const inflight = new Gauge({
    name: "riskgate_checks_in_flight",
    help: "Checks received and not yet answered.",
    aggregator: "sum",
    registers: [registry],
  });
  const auditDropped = new Counter({
    name: "riskgate_audit_lines_dropped_total",
    help: "Audit lines dropped because a destination could not keep up (stuck pipe or disk).",
    registers: [registry],
  });
  const webhookBreaker = new Gauge({
    name: "riskgate_webhook_breaker_state",
    help: "Scoring webhook circuit breaker: 0 closed, 1 half open, 2 open.",
    aggregator: "max",
    registers: [registry],
  });
  const challenges = new Counter({
    name: "riskgate_challenges_total",
    help: "Browser challenges by mechanism (pow, turnstile, hcaptcha, recaptcha) and outcome: issued, passed, failed (a wrong answer), expired, invalid (forged, or bound to another network or browser), reused (a spent nonce), unavailable (siteverify or the store could not answer).",
    labelNames: ["mechanism", "outcome"] as const,
    registers: [registry],
  });

  return {
    registry,
    decision,
    storeCall,
    breakerState: (state) => breaker.set(BREAKER[state]),
    webhookBreakerState: (state) => webhookBreaker.set(BREAKER[state]),
    jwks: (event) => jwks.inc({ outcome: event === "refresh" ? "ok" : "error" }),
    tokenVerification: (ok) => verifications.inc({ outcome: ok ? "ok" : "error" }),
    policyReload: (ok) => reloads.inc({ outcome: ok ? "ok" : "error" }),
    inflight: (delta) => inflight.inc(delta),
    auditDropped: () => auditDropped.inc(),
    challenge: (mechanism, outcome) => challenges.inc({ mechanism, outcome }),
    refused: refusalMetrics(registry),
  };
}

/** Checks answered without a decision: shed when overloaded, or dropped for a caller gone. */
function refusalMetrics(registry: Registry): Metrics["refused"] {
  const shed = new Counter({
    name: "riskgate_checks_shed_total",
    help: "Checks answered at once without a decision because RISKGATE_MAX_IN_FLIGHT Checks were in flight (gRPC RESOURCE_EXHAUSTED, HTTP 503 + Retry-After), by transport.",
    labelNames: ["transport"] as const,
    registers: [registry],
  });
  const dropped = new Counter({
    name: "riskgate_checks_dropped_total",
    help: "Checks not decided because their caller no longer waited when work would start, by reason (deadline: the gRPC deadline had passed; cancelled) and transport.",
    labelNames: ["reason", "transport"] as const,
    registers: [registry],
  });
  return (why, transport) => {
    if (why === "overloaded") shed.inc({ transport });
    else dropped.inc({ reason: why, transport });
  };
}

/** The store's round trips and failures. */
function storeMetrics(registry: Registry): Metrics["storeCall"] {
  const store = new Histogram({
    name: "riskgate_store_duration_seconds",
    help: "State store round trips, by outcome.",
    labelNames: ["outcome"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: "riskgate_store_errors_total",
    help: "Failed or timed-out state store calls.",
    registers: [registry],
  });
  // label children bound once: the hot calls then skip prom-client's label validation
  const storeOk = store.labels("ok");
  const storeFailed = store.labels("error");
  return (ms, ok) => {
    (ok ? storeOk : storeFailed).observe(ms / 1000);
    if (!ok) storeErrors.inc();
  };
}

/** What each decision counts: its outcome, reasons and duration, and what it asked outside. */
function decisionMetrics(registry: Registry): Metrics["decision"] {
  const decisions = new Counter({
    name: "riskgate_decisions_total",
    help: "Decisions answered, by outcome (decision), the policy's own outcome before shadow mode (enforced), tier, route, mode and the transport that answered (grpc, http).",
    labelNames: ["decision", "enforced", "tier", "route", "mode", "transport"] as const,
    registers: [registry],
  });
  const reasons = new Counter({
    name: "riskgate_decision_reasons_total",
    help: "Reason codes carried by decisions, by the policy's outcome (enforced).",
    labelNames: ["reason", "enforced"] as const,
    registers: [registry],
  });
  const byClientClass = new Counter({
    name: "riskgate_client_class_decisions_total",
    help: "Decisions by the request's client class (browser, machine, unknown; none when the decision ended before the signals) and the policy's outcome (enforced): how machine clients fare.",
    labelNames: ["client_class", "enforced"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "riskgate_decision_duration_seconds",
    help: "Time from receiving a Check to answering it, inside the server.",
    labelNames: ["decision"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const externalSources = new Counter({
    name: "riskgate_external_source_reads_total",
    help: "External score sources read per decision, by source and outcome (scored, unmapped, absent, untrusted: a header not from the trusted proxy hops, malformed).",
    labelNames: ["source", "outcome"] as const,
    registers: [registry],
  });
  const webhook = webhookMetrics(registry);
  // source names come from the policy; bounded all the same
  const sourceLabel = boundedLabel(64);
  // label children bound once: the hot calls then skip prom-client's label validation
  const durationBy = {
    allow: duration.labels("allow"),
    challenge: duration.labels("challenge"),
    throttle: duration.labels("throttle"),
    deny: duration.labels("deny"),
  };
  // tiers come from token claims: an issuer minting odd tiers must not explode the series
  const tierLabel = boundedLabel(64);
  const routeLabel = boundedLabel(256);
  return (event) => {
    const { verdict, enforced, mode } = event.decision;
    decisions.inc({
      decision: verdict.kind,
      enforced: enforced.kind,
      tier: tierLabel(verdict.tier),
      route: routeLabel(verdict.route),
      mode,
      transport: event.transport ?? "grpc",
    });
    for (const r of verdict.reasons) reasons.inc({ reason: r.code, enforced: enforced.kind });
    byClientClass.inc({
      client_class: event.decision.clientClass ?? "none",
      enforced: enforced.kind,
    });
    durationBy[verdict.kind].observe(Number(event.durationNs) / 1e9);
    const { external, webhook: asked } = event.decision.timings;
    if (external !== undefined) {
      for (const o of external)
        externalSources.inc({ source: sourceLabel(o.source), outcome: o.outcome });
    }
    if (asked !== undefined) webhook(asked);
  };
}

/** The scoring webhook's asks: by outcome, its failures, and the calls that went out. */
function webhookMetrics(
  registry: Registry,
): (webhook: NonNullable<StageTimings["webhook"]>) => void {
  const webhookCalls = new Counter({
    name: "riskgate_webhook_calls_total",
    help: "Scoring webhook asks by outcome: ok, cached, or the failure (timeout, error, status, malformed, breaker_open).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const webhookFailures = new Counter({
    name: "riskgate_webhook_failures_total",
    help: "Scoring webhook failures by kind (timeout, error, status, malformed, breaker_open); the route's failure mode decided.",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const webhookDuration = new Histogram({
    name: "riskgate_webhook_duration_seconds",
    help: "Scoring webhook calls that went out (not cache hits, not refused by the breaker), by outcome (ok, error).",
    labelNames: ["outcome"] as const,
    buckets: CALL_BUCKETS,
    registers: [registry],
  });
  return (webhook) => {
    webhookCalls.inc({ outcome: webhook.outcome });
    const failed = webhook.outcome !== "ok" && webhook.outcome !== "cached";
    if (failed) webhookFailures.inc({ kind: webhook.outcome });
    if (webhook.outcome !== "cached" && webhook.outcome !== "breaker_open") {
      webhookDuration.observe(
        { outcome: failed ? "error" : "ok" },
        (webhook.end - webhook.start) / 1000,
      );
    }
  };
}

/**
 * A label value that takes at most `limit` distinct values ("" for none); later newcomers are
 * counted as "other". Policy names stay well under the limits.
 */
function boundedLabel(limit: number): (value: string | undefined) => string {
  const seen = new Set<string>();
  return (value) => {
    if (value === undefined || value === "") return "";
    if (seen.has(value)) return value;
    if (seen.size >= limit) return "other";
    seen.add(value);
    return value;
  };
}
