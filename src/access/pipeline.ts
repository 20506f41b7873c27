import type { FailureMode, Mode } from "../config/policy-schema.js";
import type { ScoringWebhookDeps, WebhookFailure } from "../external/scoring-webhook.js";
import type { GeoReader } from "../geo/geo-reader.js";
import type { OpResult, Store, StoreOp } from "../state/store.js";
import { createSubjectHasher } from "../telemetry/subject-hash.js";
import { failureModeOf } from "./failure.js";
import type { IdentityOutcome } from "./identity.js";
import type { IdentityMethod } from "./identity-sources/identity-source.js";
import type { Caller, LicenseOutcome } from "./license.js";
import { overBudgetVerdict } from "./over-budget.js";
import { decide } from "./phases/decide.js";
import { gatherPhase } from "./phases/gather.js";
import { identify } from "./phases/identify.js";
import { license } from "./phases/license.js";
import { type CheckRun, phaseTable, runPhases } from "./phases/phase.js";
import { recordPhase } from "./phases/record.js";
import { rules } from "./phases/rules.js";
import { score } from "./phases/score.js";
import { shadow } from "./phases/shadow.js";
import type { Policy } from "./policy.js";
import type { PolicySnapshot } from "./policy-snapshot.js";
import type { AccessRequest } from "./request.js";
import { type ResolvedRoute, resolveRoute } from "./routes.js";
import { forClientClass } from "./signals/client-class.js";
import { checkSignalOrder, SIGNALS } from "./signals/index.js";
import type {
  ClientClass,
  ExternalObservation,
  Signal,
  SignalContext,
  SignalFinding,
} from "./signals/signal.js";
import { withinBudget } from "./time-budget.js";
import { decisionContext, type Verdict } from "./verdict.js";
import { createWebhookClients } from "./webhook-clients.js";

/** The signals a decision runs, in order. Each is on/off in the policy. */
export const DEFAULT_SIGNALS: readonly Signal[] = SIGNALS.map(forClientClass);

export interface PipelineDeps {
  readonly store: Store;
  readonly clock: () => number;
  readonly signals?: readonly Signal[];
  /** Geolocation for the geo signals (off when absent). List files come with each PolicySnapshot. */
  readonly geo?: GeoReader;
  /** Called when the store fails (for logs and metrics); never affects the decision. */
  readonly onStoreError?: (err: unknown) => void;
  /**
   * Race each decision against the policy's `failure.budget_ms` of wall time (default true).
   * Replay turns it off: its clock is the recorded one, and a decision must not depend on how
   * busy the machine replaying it was.
   */
  readonly timeBudget?: boolean;
  /**
   * Pseudonymises the subject and org sent to the scoring webhook (the audit's subject hash);
   * without it they go out as an unkeyed HMAC, never as they are unless the policy says so.
   */
  readonly pseudonym?: (value: string) => string;
  /**
   * Call the scoring webhook on routes that ask for it (default true). Replay turns it off: a
   * recorded week must not call a live service, nor its decisions depend on one.
   */
  readonly scoringWebhook?: boolean;
  /** The scoring webhook's breaker clock and observer (tests, metrics). */
  readonly webhook?: ScoringWebhookDeps;
}

/**
 * Observes the stages of one decision, in order, for `riskgate explain`. Passed per call and
 * absent on the hot path, where each stage pays one `undefined` check. Hooks only read.
 */
export interface DecisionTrace {
  route?(route: ResolvedRoute): void;
  identity?(outcome: IdentityOutcome, caller: Caller | undefined): void;
  license?(outcome: LicenseOutcome): void;
  /** The signal context once built (device id, the location when a signal asks for it). */
  context?(ctx: SignalContext): void;
  /** One enabled signal: its store ops, their readings (undefined: store down), its finding. */
  signal?(
    name: string,
    ops: readonly StoreOp[],
    readings: readonly OpResult<StoreOp>[] | undefined,
    finding: SignalFinding | undefined,
  ): void;
}

/**
 * When the stages that wait ran (ms from `performance.now()`), so telemetry can draw child
 * spans after the fact instead of tracing on the hot path. Absent when the stage did not run.
 */
export interface StageTimings {
  identify?: {
    start: number;
    end: number;
    /** Where the credential was found (bearer, cookie, jwt_authn, mtls, api_key, introspection). */
    source?: string;
    /** The identity source that answered (jwt, jwt_authn, mtls, api_key, introspection). */
    method?: IdentityMethod;
    /** The mesh peer beside the user on a `peer: with_token` route. */
    peer?: string;
    cached?: boolean;
  };
  store?: { start: number; end: number; ops: number; ok: boolean };
  /** What each external score source said (signals.external_scores). */
  external?: readonly ExternalObservation[];
  /** The scoring webhook's call: `ok`, `cached`, or why it failed. */
  webhook?: { start: number; end: number; outcome: "ok" | "cached" | WebhookFailure };
}

/** A decision plus what the transport and telemetry need to know about how it was reached. */
export interface Decision {
  readonly timings: StageTimings;
  readonly verdict: Verdict;
  /** The verdict before shadow mode relaxed it (same object when enforcing). */
  readonly enforced: Verdict;
  readonly mode: Mode;
  readonly failureMode: FailureMode;
  readonly policyVersion: string;
  /** The caller as read from verified claims (absent when identity did not get that far). */
  readonly caller?: Caller | undefined;
  /** The device id the signals used ("" or absent when none). */
  readonly deviceId?: string | undefined;
  /** The client class the signals saw (absent when the decision ended before them). */
  readonly clientClass?: ClientClass | undefined;
}

/**
 * The decision for a verdict reached outside the stages (a request that could not be read, an
 * internal error): enforced as given, under the policy's own mode.
 */
export function fixedDecision(policy: Policy, verdict: Verdict): Decision {
  return {
    verdict,
    enforced: verdict,
    timings: {},
    mode: policy.doc.mode,
    failureMode: policy.doc.failure.mode,
    policyVersion: policy.version,
  };
}

export interface Pipeline {
  /**
   * Decides one request. Expected failures (store down, keys unavailable, over budget) resolve
   * to the configured failure outcome. It rejects (or throws) only on an unexpected error, a
   * bug; the caller turns that into `failure.on_internal_error` (the gRPC transport does).
   * `trace` observes the stages (for `riskgate explain`).
   */
  evaluate(snapshot: PolicySnapshot, req: AccessRequest, trace?: DecisionTrace): Promise<Decision>;
}

/**
 * The access pipeline: the route is resolved, then the deciding phases run in order inside the
 * policy's time budget (identify -> license -> gather -> score -> rules -> decide), then shadow
 * mode and the writes the verdict allows. Callers: the transports, replay, and the challenge
 * service that wraps it. The signal list's order is checked here, once.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const signals = deps.signals ?? DEFAULT_SIGNALS;
  checkSignalOrder(signals);
  const webhooks =
    deps.scoringWebhook === false
      ? undefined
      : createWebhookClients(deps.pseudonym ?? createSubjectHasher(""), deps.webhook);
  const phases = phaseTable(
    [
      identify,
      license,
      gatherPhase({
        store: deps.store,
        signals,
        geo: deps.geo,
        onStoreError: deps.onStoreError,
        webhooks,
      }),
      score,
      rules,
      decide,
    ],
    true,
  );
  const record = recordPhase({ store: deps.store, signals, onStoreError: deps.onStoreError });
  const timeBudget = deps.timeBudget ?? true;

  return {
    async evaluate(snapshot, req, trace) {
      const { policy } = snapshot;
      const route = resolveRoute(snapshot.routes, req);
      trace?.route?.(route);
      const check: CheckRun = { snapshot, req, route, timings: {}, trace, learned: {} };
      const budgetMs = timeBudget ? policy.doc.failure.budget_ms : undefined;
      const outcome = await withinBudget(budgetMs, () => runPhases(phases, check));
      const enforced =
        outcome === "budget" ? overBudget(check, policy.doc.failure.budget_ms) : outcome;
      const { verdict, mode, tier } = shadow(policy, route, enforced);
      record(policy, req, enforced, verdict, check.learned);
      return {
        verdict,
        enforced,
        timings: check.timings,
        mode,
        failureMode: failureModeOf(policy, tier, route),
        policyVersion: policy.version,
        caller: check.learned.caller,
        deviceId: check.learned.deviceId,
        clientClass: check.learned.clientClass,
      };
    },
  };
}

/**
 * The verdict when the phases ran out of time; nothing is learnt from them. A caller identified
 * before the budget ran out is named, as any other verdict names it; none identified yet means
 * the keys did not arrive in time (see over-budget.ts).
 */
function overBudget(check: CheckRun, budgetMs: number): Verdict {
  check.learned.signals = undefined;
  const { req, route } = check;
  const who = check.learned.caller;
  return overBudgetVerdict({
    req,
    route: route.name,
    budgetMs,
    identified:
      who === undefined
        ? undefined
        : decisionContext(req.id, route, who, who.tier || undefined, 0, []),
    failureMode: failureModeOf(check.snapshot.policy, undefined, route),
  });
}
