import { callerFromClaims } from "./access/license.js";
import { createPipeline } from "./access/pipeline.js";
import { type PolicySnapshot, policySnapshotOf } from "./access/policy-snapshot.js";
import type { Settings } from "./config/settings.js";
import type { GeoReader } from "./geo/geo-reader.js";
import { createMemoryStore } from "./state/memory-store.js";
import type { Store } from "./state/store.js";
import type { Logger } from "./telemetry/logger.js";
import { type CheckRequestMessage, toAccessRequest } from "./transport/check-request.js";
import { renderCheckResponse } from "./transport/check-response.js";
import { loadProtos } from "./transport/protos.js";

export interface WarmUpDeps {
  /** The store Checks will use: its script goes out once, reading nothing it keeps. */
  readonly store: Store;
  readonly geo?: GeoReader | undefined;
  readonly clock: () => number;
  readonly settings: Pick<Settings, "trustedHops">;
  readonly logger: Logger;
}

/** A step that has not finished by then is left behind: a store that does not answer must not hold the start. */
const STEP_TIMEOUT_MS = 1000;

/** A public address (the geo reader skips private ones), never written to any state. */
const WARM_IP = "81.2.69.160";

/**
 * Runs each part of a Check once, for the snapshot about to serve, before health says SERVING,
 * so the first real Checks do not pay for first use (lazy compilation of the decision code, the
 * geo database's first pages, the store script's first EVAL on its connection), which took cold
 * Checks past the 100 ms budget. No token is verified: a made-up token's unknown key id would
 * make the key source refetch the issuer's JWKS and spend its refetch allowance at start. Nothing it does is a decision anyone sees: the synthetic request runs
 * through its own pipeline over a throw-away memory store with a synthetic caller, is never
 * reported to metrics, spans or the audit log, and the shared store is only read (a `window`
 * op of cost 0 creates no key). Best effort: a part that fails, or takes over a second, is logged
 * and left behind; the server starts all the same (Redis down at start is the failure mode's
 * business).
 */
export async function warmUp(snapshot: PolicySnapshot, deps: WarmUpDeps): Promise<void> {
  const { logger } = deps;
  const trustedHops = deps.settings.trustedHops;
  const now = deps.clock();
  const started = performance.now();
  const step = async (name: string, run: () => unknown) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(resolve, STEP_TIMEOUT_MS, "late");
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(run), late]);
      if (outcome === "late") logger.warn({ step: name }, "warm-up step timed out; serving");
    } catch (err) {
      logger.warn({ err, step: name }, "warm-up step failed; serving all the same");
    } finally {
      clearTimeout(timer);
    }
  };
  await step("geo", () => deps.geo?.lookup(WARM_IP));
  await step("store", () =>
    deps.store.exec({
      ops: [{ op: "window", key: { tag: "warm-up", name: "read" }, windowMs: 60_000, cost: 0 }],
      now,
    }),
  );
  const message = warmRequest(snapshot);
  await step("decision", async () => {
    const codec = loadProtos().authorization.service.Check;
    const wire = codec?.requestDeserialize(codec.requestSerialize(message)) ?? message;
    const req = toAccessRequest(wire as CheckRequestMessage, {
      trustedHops,
      now,
    });
    const memory = createMemoryStore();
    try {
      const pipeline = createPipeline({
        store: memory,
        clock: deps.clock,
        ...(deps.geo === undefined ? {} : { geo: deps.geo }),
        scoringWebhook: false,
      });
      const synthetic = policySnapshotOf(snapshot.policy, warmIdentifier(snapshot), snapshot.lists);
      const decision = await pipeline.evaluate(synthetic, req);
      renderCheckResponse(decision.verdict, req, snapshot.policy.doc.decisions);
    } finally {
      await memory.close();
    }
  });
  logger.info({ ms: Math.round(performance.now() - started) }, "warmed up");
}

/** What Envoy would send for the policy's first authenticated route, from a public address. */
function warmRequest(snapshot: PolicySnapshot): CheckRequestMessage {
  const route = snapshot.policy.doc.routes.find((r) => r.auth !== "none" && r.match.path);
  const pathMatch = route?.match.path;
  const path =
    pathMatch === undefined
      ? "/"
      : "exact" in pathMatch
        ? pathMatch.exact
        : "prefix" in pathMatch
          ? pathMatch.prefix
          : "/";
  const method = route?.match.methods?.[0] ?? "GET";
  const host = route?.match.hosts?.[0] ?? "warm-up.invalid";
  return {
    attributes: {
      source: { address: { socket_address: { address: WARM_IP, port_value: 1 } } },
      request: {
        http: {
          id: "riskgate-warm-up",
          method,
          path,
          host,
          headers: {
            ":method": method,
            ":path": path,
            ":authority": host,
            "user-agent": "riskgate",
          },
        },
      },
    },
  };
}

/** Identifies every request as one synthetic caller of the policy's first tier. */
function warmIdentifier(snapshot: PolicySnapshot): PolicySnapshot["identifier"] {
  const doc = snapshot.policy.doc;
  const tier = Object.keys(doc.tiers)[0] ?? "";
  const claims = {
    sub: "riskgate-warm-up",
    tier,
    entitlements: doc.routes.flatMap((r) => (r.entitlement === undefined ? [] : [r.entitlement])),
    amr: ["pwd", "mfa"],
  };
  const caller = Object.freeze(callerFromClaims(claims, doc.identity.claims));
  return {
    identify: () =>
      Promise.resolve({ kind: "verified", caller, claims, source: "bearer", cached: true }),
    ready: () => Promise.resolve(),
    stats: () => ({ verifications: 0, cacheHits: 0, failures: 0 }),
  };
}
