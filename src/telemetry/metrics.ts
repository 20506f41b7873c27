import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DecisionEvent } from "../transport/envoy-grpc.js";

/** Decision latency buckets, in seconds: 50 us to 250 ms (Envoy's ext_authz timeout). */
const DECISION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];

export interface Metrics {
  readonly registry: Registry;
  decision(event: DecisionEvent): void;
  storeCall(ms: number, ok: boolean): void;
  breakerState(state: "closed" | "open" | "half_open"): void;
  jwksFetch(ok: boolean): void;
  policyReload(ok: boolean): void;
  inflight(delta: 1 | -1): void;
  /** Serves GET /metrics on host:port; resolves with the bound port. */
  listen(address: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * Prometheus metrics on a registry of riskgate's own (never the global one). Names follow
 * Prometheus conventions with units; labels are bounded (decision, tier, route, reason code).
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const decisions = new Counter({
    name: "riskgate_decisions_total",
    help: "Decisions by outcome, enforced outcome, tier, route and mode.",
    labelNames: ["decision", "enforced", "tier", "route", "mode"] as const,
    registers: [registry],
  });
  const reasons = new Counter({
    name: "riskgate_decision_reasons_total",
    help: "Reason codes carried by decisions.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "riskgate_decision_duration_seconds",
    help: "Time from receiving a Check to answering it, inside the server.",
    labelNames: ["decision"] as const,
    buckets: DECISION_BUCKETS,
    registers: [registry],
  });
  const store = new Histogram({
    name: "riskgate_store_duration_seconds",
    help: "State store round trips.",
    labelNames: ["outcome"] as const,
    buckets: DECISION_BUCKETS,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: "riskgate_store_errors_total",
    help: "Failed or timed-out state store calls.",
    registers: [registry],
  });
  const breaker = new Gauge({
    name: "riskgate_store_breaker_state",
    help: "Store circuit breaker: 0 closed, 1 half open, 2 open.",
    registers: [registry],
  });
  const jwks = new Counter({
    name: "riskgate_jwks_fetches_total",
    help: "JWKS fetches by outcome.",
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
    registers: [registry],
  });
  let server: Server | undefined;

  return {
    registry,
    decision(event) {
      const v = event.decision.verdict;
      decisions.inc({
        decision: v.kind,
        enforced: event.decision.enforced.kind,
        tier: v.tier ?? "",
        route: v.route ?? "",
        mode: event.decision.mode,
      });
      for (const r of v.reasons) reasons.inc({ reason: r.code });
      duration.observe({ decision: v.kind }, Number(event.durationNs) / 1e9);
    },
    storeCall(ms, ok) {
      store.observe({ outcome: ok ? "ok" : "error" }, ms / 1000);
      if (!ok) storeErrors.inc();
    },
    breakerState(state) {
      breaker.set(state === "closed" ? 0 : state === "half_open" ? 1 : 2);
    },
    jwksFetch: (ok) => jwks.inc({ outcome: ok ? "ok" : "error" }),
    policyReload: (ok) => reloads.inc({ outcome: ok ? "ok" : "error" }),
    inflight: (delta) => inflight.inc(delta),
    listen(address) {
      const colon = address.lastIndexOf(":");
      const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
      const port = Number(address.slice(colon + 1));
      server = createServer((req, res) => {
        if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
          res.writeHead(404).end();
          return;
        }
        registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      });
      const s = server;
      return new Promise((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, host, () => resolve((s.address() as { port: number }).port));
      });
    },
    close() {
      const s = server;
      if (s === undefined) return Promise.resolve();
      return new Promise((resolve) => s.close(() => resolve()));
    },
  };
}
