import type { FailureMode, Mode, TierPolicy } from "../config/policy-schema.js";
import { afterPendingIo } from "../deadline.js";
import {
  createScoringWebhook,
  type ScoringWebhook,
  type ScoringWebhookDeps,
  type WebhookFailure,
} from "../external/scoring-webhook.js";
import type { GeoReader } from "../geo/geo-reader.js";
import type { OpResult, Store, StoreOp } from "../state/store.js";
import { createSubjectHasher } from "../telemetry/subject-hash.js";
import { cookieValue } from "./cookies.js";
import {
  decideRisk,
  decisionContext,
  failureLetsThrough,
  failureVerdict,
  scoreOf,
  type Throttle,
} from "./decide.js";
import type { IdentityOutcome } from "./identity.js";
import { anonymousCaller, type Caller, checkLicense, type LicenseOutcome } from "./license.js";
import type { Policy, PolicyDocument } from "./policy.js";
import type { Reason } from "./reasons.js";
import type { AccessRequest } from "./request.js";
import { type ResolvedRoute, resolveRoute } from "./routes.js";
import type { Runtime } from "./runtime.js";
import { clientClassOf, forClientClass } from "./signals/client-class.js";
import { wantsWebhook, webhookReasons, webhookRequest } from "./signals/external-webhook.js";
import { failureRecord } from "./signals/failed-attempts.js";
import { checkSignalOrder, SIGNALS } from "./signals/index.js";
import type {
  ExternalObservation,
  Outcome,
  Signal,
  SignalContext,
  SignalEnv,
  SignalFinding,
} from "./signals/signal.js";
import type { DecisionContext, Verdict } from "./verdict.js";

/** The signals a decision runs, in order. Each is on/off in the policy. */
export const DEFAULT_SIGNALS: readonly Signal[] = SIGNALS.map(forClientClass);

export interface PipelineDeps {
  readonly store: Store;
  readonly clock: () => number;
  readonly signals?: readonly Signal[];
  /** Geolocation for the geo signals (off when absent). List files come with each Runtime. */
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
  identify?: { start: number; end: number; source?: string; cached?: boolean };
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
  evaluate(runtime: Runtime, req: AccessRequest, trace?: DecisionTrace): Promise<Decision>;
}

/**
 * The access pipeline: route -> identify -> license -> signals (one store batch) -> score ->
 * decide, inside the policy's time budget, then shadow mode. Stages are plain functions with
 * explicit inputs; the transport is the only caller.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const signals = deps.signals ?? DEFAULT_SIGNALS;
  checkSignalOrder(signals);
  // what signals read besides the store: the process's geo reader and the snapshot's lists
  const envs = new WeakMap<Runtime, SignalEnv>();
  const envOf = (runtime: Runtime): SignalEnv => {
    let env = envs.get(runtime);
    if (env === undefined) {
      const { ipList, asnList } = runtime.lists;
      env = deps.geo === undefined ? { ipList, asnList } : { geo: deps.geo, ipList, asnList };
      envs.set(runtime, env);
    }
    return env;
  };
  const timeBudget = deps.timeBudget ?? true;
  const pseudonym = deps.pseudonym ?? createSubjectHasher("");
  // one webhook client (its cache and breaker) per policy snapshot that configures one
  const webhooks = new WeakMap<Runtime, ScoringWebhook>();
  const webhookOf = (runtime: Runtime): ScoringWebhook => {
    let client = webhooks.get(runtime);
    if (client === undefined) {
      const cfg = runtime.policy.doc.signals.scoring_webhook;
      client = createScoringWebhook(
        {
          url: cfg.url ?? "",
          timeoutMs: cfg.timeout_ms,
          cacheTtlMs: cfg.cache.ttl_seconds * 1000,
          cacheMax: cfg.cache.max_entries,
          breakerFailures: cfg.breaker.failures,
          breakerOpenMs: cfg.breaker.open_seconds * 1000,
        },
        deps.webhook,
      );
      webhooks.set(runtime, client);
    }
    return client;
  };

  /** Starts the webhook call (it never rejects); it resolves to its timing and outcome. */
  function askWebhook(runtime: Runtime, ctx: SignalContext) {
    const { body, cacheKey } = webhookRequest(ctx, pseudonym);
    const start = performance.now();
    return webhookOf(runtime)
      .score(body, cacheKey)
      .then((outcome) => ({ start, end: performance.now(), outcome }));
  }

  async function run(
    runtime: Runtime,
    req: AccessRequest,
    route: ResolvedRoute,
    timings: StageTimings,
    trace: DecisionTrace | undefined,
    learned: Learned,
  ): Promise<Verdict> {
    const { policy } = runtime;
    const doc = policy.doc;
    const env = envOf(runtime);
    const base: DecisionContext = { requestId: req.id, score: 0, reasons: [], route: route.name };

    if (route.rule === undefined && doc.default_route.action === "deny") {
      return deny(base, "license", { code: "license.route_unmatched", points: 0 });
    }
    if (route.auth === "none") return { ...base, kind: "allow" };

    // identify
    const identifyStart = performance.now();
    const identity = await runtime.identifier.identify(req, req.receivedAt);
    timings.identify = {
      start: identifyStart,
      end: performance.now(),
      ...(identity.kind === "verified" ? { source: identity.source, cached: identity.cached } : {}),
    };
    let caller: Caller;
    if (identity.kind === "invalid") {
      trace?.identity?.(identity, undefined);
      return deny(base, "authentication", {
        code: identity.reason,
        points: 0,
        detail: identity.detail,
      });
    } else if (identity.kind === "anonymous") {
      if (route.auth !== "optional" || doc.anonymous_tier === undefined) {
        trace?.identity?.(identity, undefined);
        return deny(base, "authentication", { code: "identity.missing", points: 0 });
      }
      caller = anonymousCaller(doc.anonymous_tier, req.clientIp);
    } else {
      // read from the claims by the identify stage, and cached with the verified token
      caller = identity.caller;
    }
    learned.caller = caller;
    trace?.identity?.(identity, caller);
    const who = decisionContext(req.id, route, caller, caller.tier || undefined, 0, []);

    // license
    const license = checkLicense(policy, caller, route);
    trace?.license?.(license);
    if (!license.ok) return deny(who, "license", license.reason);

    // signals: every enabled signal's store ops go out as one batch
    let located = false;
    let location: ReturnType<SignalContext["location"]>;
    const ctx: SignalContext = {
      policy,
      req,
      caller,
      route,
      tierName: license.tierName,
      tier: license.tier,
      now: req.receivedAt,
      env,
      location() {
        if (!located) {
          located = true;
          location = env.geo?.lookup(req.clientIp);
        }
        return location;
      },
      deviceId: deviceIdOf(req, doc.signals.device),
      ...credentialFacts(doc, req, identity, caller),
    };
    learned.deviceId = ctx.deviceId;
    trace?.context?.(ctx);
    // the scoring webhook goes out now, in parallel with the store read, on routes that ask
    const scoring =
      deps.scoringWebhook !== false && wantsWebhook(ctx) ? askWebhook(runtime, ctx) : undefined;
    const active: Signal[] = [];
    const batch: StoreOp[] = [];
    // opsEnd[i]: where active[i]'s ops end in the batch (they start where the previous end)
    const opsEnd: number[] = [];
    for (const signal of signals) {
      if (!signal.enabled(ctx)) continue;
      active.push(signal);
      if (signal.ops !== undefined) batch.push(...signal.ops(ctx));
      opsEnd.push(batch.length);
    }
    const reasons: Reason[] = [];
    let results: readonly OpResult<StoreOp>[] | undefined = NO_RESULTS;
    if (batch.length > 0) {
      const start = performance.now();
      try {
        results = (await deps.store.exec({ ops: batch, now: req.receivedAt })).results;
        timings.store = { start, end: performance.now(), ops: batch.length, ok: true };
      } catch (err) {
        timings.store = { start, end: performance.now(), ops: batch.length, ok: false };
        deps.onStoreError?.(err);
        const failure = failureModeOf(policy, license.tier, route);
        const reason: Reason = { code: "failure.store", points: 0, detail: failure };
        if (!failureLetsThrough(failure, req)) return deny(who, "failure", reason);
        reasons.push(reason);
        results = undefined;
      }
    }
    let throttle: Throttle | undefined;
    let block: Reason | undefined;
    for (let i = 0, from = 0; i < active.length; i++) {
      const signal = active[i] as Signal;
      const to = opsEnd[i] as number;
      const stateful = to > from;
      const mine = !stateful ? NO_RESULTS : results?.slice(from, to);
      const opsFrom = from;
      from = to;
      if (mine === undefined) {
        // store down: stateful signals sit this one out
        trace?.signal?.(signal.name, batch.slice(opsFrom, to), undefined, undefined);
        continue;
      }
      const finding = signal.evaluate(ctx, mine);
      trace?.signal?.(signal.name, batch.slice(opsFrom, to), mine, finding);
      for (const r of finding.reasons) reasons.push(r);
      if (finding.observations !== undefined) timings.external = finding.observations;
      if (finding.throttle && throttle === undefined) throttle = finding.throttle;
      if (finding.block && block === undefined) block = finding.block;
    }
    // what the verdict may write, once it is known (see `record`)
    learned.ctx = ctx;
    learned.active = active;
    learned.stateRead = results !== undefined;
    learned.results = results ?? NO_RESULTS;
    learned.opsEnd = opsEnd;
    if (block !== undefined) {
      return deny({ ...who, reasons }, "risk", block);
    }
    // a hard block did not wait for the webhook; anything else does (it ran beside the store)
    if (scoring !== undefined) {
      const { start, end, outcome } = await scoring;
      const ok = outcome.kind === "ok";
      timings.webhook = {
        start,
        end,
        outcome: !ok ? outcome.failure : outcome.cached ? "cached" : "ok",
      };
      if (ok) {
        for (const r of webhookReasons(doc.signals.scoring_webhook, outcome.answer))
          reasons.push(r);
      } else {
        const failure = failureModeOf(policy, license.tier, route);
        const detail = `${outcome.failure}; ${failure}`;
        const reason: Reason = { code: "failure.webhook", points: 0, detail };
        if (!failureLetsThrough(failure, req)) return deny({ ...who, reasons }, "failure", reason);
        reasons.push(reason);
      }
    }

    return decideRisk(ctx, reasons, throttle);
  }

  /**
   * The writes the verdict allows, after the answer: shared rate windows count served
   * requests, the profile learns from trusted ones, failures are counted. One batch that
   * nothing waits on, so the deciding path keeps its one round trip.
   */
  function record(
    policy: Policy,
    req: AccessRequest,
    enforced: Verdict,
    verdict: Verdict,
    learned: Learned,
  ): void {
    const ops: StoreOp[] = [];
    const { ctx, active } = learned;
    if (ctx !== undefined && active !== undefined) {
      const outcome: Outcome = {
        served:
          verdict.kind === "allow" || (verdict.kind === "challenge" && verdict.style === "header"),
        trusted:
          enforced.kind === "allow" &&
          learned.stateRead === true &&
          !enforced.reasons.some((r) => r.code === "risk.downgraded"),
        verdict,
        enforced,
      };
      const results = learned.results ?? NO_RESULTS;
      for (let i = 0; i < active.length; i++) {
        const signal = active[i] as Signal;
        if (signal.record === undefined) continue;
        const from = i === 0 ? 0 : (learned.opsEnd?.[i - 1] ?? 0);
        const mine = results.slice(from, learned.opsEnd?.[i] ?? from);
        ops.push(...signal.record(ctx, outcome, mine));
      }
    }
    const attempts = policy.doc.signals.failed_attempts;
    if (attempts.enabled) ops.push(...failureRecord(enforced, req, attempts));
    if (ops.length === 0) return;
    deps.store
      .exec({ ops, now: req.receivedAt, background: true })
      .catch((err: unknown) => deps.onStoreError?.(err));
  }

  return {
    async evaluate(runtime, req, trace) {
      const { policy } = runtime;
      const route = resolveRoute(runtime.routes, req);
      trace?.route?.(route);
      const budgetMs = policy.doc.failure.budget_ms;
      let cancel: (() => void) | undefined;
      const overBudget = !timeBudget
        ? undefined
        : new Promise<"budget">((resolve) => {
            cancel = afterPendingIo(budgetMs, () => resolve("budget"));
          });
      let enforced: Verdict;
      const timings: StageTimings = {};
      const learned: Learned = {};
      try {
        const running = run(runtime, req, route, timings, trace, learned);
        const outcome =
          overBudget === undefined ? await running : await Promise.race([running, overBudget]);
        if (outcome === "budget") {
          learned.ctx = undefined; // decided without the signals: nothing to learn from
          const mode = failureModeOf(policy, undefined, route);
          const reason: Reason = { code: "failure.budget", points: 0, detail: `${budgetMs}ms` };
          enforced = failureVerdict(mode, req, {
            requestId: req.id,
            score: 0,
            reasons: [reason],
            route: route.name,
          });
        } else {
          enforced = outcome;
        }
      } finally {
        cancel?.();
      }
      const tier = enforced.tier === undefined ? undefined : policy.doc.tiers[enforced.tier];
      const mode = route.rule?.mode ?? tier?.mode ?? policy.doc.mode;
      const verdict: Verdict =
        mode === "shadow" && enforced.kind !== "allow"
          ? { ...enforced, kind: "allow", shadowOf: enforced.kind }
          : enforced;
      record(policy, req, enforced, verdict, learned);
      return {
        verdict,
        enforced,
        timings,
        mode,
        failureMode: failureModeOf(policy, tier, route),
        policyVersion: policy.version,
        caller: learned.caller,
        deviceId: learned.deviceId,
      };
    },
  };
}

/**
 * What the stages learnt besides the verdict: for the decision's observers (audit) and for the
 * writes after the verdict (unset where the stage did not run).
 */
interface Learned {
  caller?: Caller;
  deviceId?: string;
  ctx?: SignalContext | undefined;
  active?: readonly Signal[];
  /** The deciding batch answered (false: the store failed and signals sat out). */
  stateRead?: boolean;
  /** What the deciding batch read, and where each active signal's ops end in it. */
  results?: readonly OpResult<StoreOp>[];
  opsEnd?: readonly number[];
}

function failureModeOf(
  policy: Policy,
  tier: TierPolicy | undefined,
  route: ResolvedRoute,
): FailureMode {
  return route.rule?.failure ?? tier?.failure ?? policy.doc.failure.mode;
}

function deny(
  base: DecisionContext,
  cause: "authentication" | "license" | "failure" | "risk",
  reason: Reason,
): Verdict {
  const reasons = [...base.reasons, reason];
  return { ...base, reasons, score: scoreOf(reasons), kind: "deny", cause };
}

const NO_RESULTS: readonly OpResult<StoreOp>[] = Object.freeze([]);

/** What the signals read about the credential: its claims, its source, its client class. */
function credentialFacts(
  doc: PolicyDocument,
  req: AccessRequest,
  identity: IdentityOutcome,
  caller: Caller,
): Pick<SignalContext, "claims" | "credentialSource" | "clientClass"> {
  if (identity.kind !== "verified") {
    return { claims: NO_CLAIMS, credentialSource: undefined, clientClass: "unknown" };
  }
  const { claims, source } = identity;
  return {
    claims,
    credentialSource: source,
    clientClass: clientClassOf(doc.signals.client_class, {
      req,
      claims,
      subject: caller.subject,
      source,
    }),
  };
}

const NO_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});

/** The device id from the configured header, else the configured cookie ("" when none). */
function deviceIdOf(req: AccessRequest, cfg: PolicyDocument["signals"]["device"]): string {
  if (!cfg.enabled) return "";
  const header = req.headers.get(cfg.header);
  if (header !== undefined && header !== "") return header.slice(0, 256);
  if (cfg.cookie === undefined) return "";
  return (cookieValue(req.headers.get("cookie"), cfg.cookie) ?? "").slice(0, 256);
}
