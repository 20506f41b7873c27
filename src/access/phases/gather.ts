import type { GeoReader } from "../../geo/geo-reader.js";
import type { OpResult, Store, StoreOp } from "../../state/store.js";
import { failureLetsThrough, failureModeOf } from "../failure.js";
import type { IdentityOutcome } from "../identity.js";
import type { Caller } from "../license.js";
import type { PolicyDocument } from "../policy.js";
import type { PolicySnapshot } from "../policy-snapshot.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import { clientClassOf } from "../signals/client-class.js";
import { deviceIdOf } from "../signals/device.js";
import { wantsWebhook } from "../signals/external-webhook.js";
import { NO_OPS, type Signal, type SignalContext, type SignalEnv } from "../signals/signal.js";
import type { DecisionContext } from "../verdict.js";
import type { WebhookCall, WebhookClients } from "../webhook-clients.js";
import type { Licensed } from "./license.js";
import { type ActiveSignal, type CheckRun, deny, next, type Phase } from "./phase.js";

/** What the signals have to go on: their context, their store readings, the webhook's call. */
export interface Gathered {
  readonly ctx: SignalContext;
  /** The decision context so far (who, which route). */
  readonly who: DecisionContext;
  /** Every enabled signal, in order, with what its ops read. */
  readonly active: readonly ActiveSignal[];
  /** The store failed and the failure mode let the request carry on: `failure.store`. */
  readonly notes: readonly Reason[];
  /** The scoring webhook's call, under way beside the store read (routes that ask for it). */
  readonly scoring: Promise<WebhookCall> | undefined;
}

export interface GatherDeps {
  readonly store: Store;
  readonly signals: readonly Signal[];
  /** Geolocation for the geo signals (off when absent). */
  readonly geo?: GeoReader | undefined;
  readonly onStoreError?: ((err: unknown) => void) | undefined;
  /** Undefined: the scoring webhook is never called (replay). */
  readonly webhooks: WebhookClients | undefined;
}

const NO_RESULTS: readonly OpResult<StoreOp>[] = Object.freeze([]);
const NO_REASONS: readonly Reason[] = Object.freeze([]);

/**
 * Gather: the signal context (device id, client class, location on demand), the scoring
 * webhook's call started, and every enabled signal's store ops sent as one batch: one round
 * trip. A store failure denies, or under a failure mode that lets the request through, leaves
 * the stateful signals out of this decision.
 */
export function gatherPhase(deps: GatherDeps): Phase<Licensed, Gathered> {
  const envOf = signalEnvs(deps.geo);
  return {
    name: "gather",
    run(check, licensed) {
      const ctx = signalContext(check, licensed, envOf(check.snapshot));
      check.learned.deviceId = ctx.deviceId;
      check.learned.clientClass = ctx.clientClass;
      check.trace?.context?.(ctx);
      const scoring =
        deps.webhooks !== undefined && wantsWebhook(ctx)
          ? deps.webhooks.ask(check.snapshot, ctx)
          : undefined;
      const active: Reading[] = [];
      const batch: StoreOp[] = [];
      for (const signal of deps.signals) {
        if (!signal.enabled(ctx)) continue;
        const ops = signal.ops === undefined ? NO_OPS : signal.ops(ctx);
        // a signal without ops has nothing to wait for: it evaluates even when the store fails
        active.push({ signal, ops, results: ops.length === 0 ? NO_RESULTS : undefined });
        for (const op of ops) batch.push(op);
      }
      const gathered = (notes: readonly Reason[]): Gathered => {
        check.learned.stateRead = notes.length === 0;
        return { ctx, who: licensed.who, active, notes, scoring };
      };
      if (batch.length === 0) return next(gathered(NO_REASONS));
      return read(check, deps, batch).then((results) => {
        if (results !== undefined) {
          shareOut(active, results);
          return gathered(NO_REASONS);
        }
        const failure = failureModeOf(check.snapshot.policy, licensed.tier, check.route);
        const reason: Reason = { code: "failure.store", points: 0, detail: failure };
        if (!failureLetsThrough(failure, check.req)) return deny(licensed.who, "failure", reason);
        return gathered([reason]);
      });
    },
  };
}

/** An enabled signal as gathering fills it in: its results arrive with the batch's. */
type Reading = { -readonly [K in keyof ActiveSignal]: ActiveSignal[K] };

/** The deciding batch's results, or undefined when the store failed (timed in `timings.store`). */
function read(
  check: CheckRun,
  deps: GatherDeps,
  batch: readonly StoreOp[],
): Promise<readonly OpResult<StoreOp>[] | undefined> {
  const start = performance.now();
  const done = (ok: boolean) => {
    check.timings.store = { start, end: performance.now(), ops: batch.length, ok };
  };
  const failed = (err: unknown) => {
    done(false);
    deps.onStoreError?.(err);
    return undefined;
  };
  try {
    return deps.store.exec({ ops: batch, now: check.req.receivedAt }).then(({ results }) => {
      done(true);
      return results;
    }, failed);
  } catch (err) {
    return Promise.resolve(failed(err));
  }
}

/** Each stateful signal's share of the batch's results, in op order. */
function shareOut(active: Reading[], results: readonly OpResult<StoreOp>[]): void {
  let from = 0;
  for (const a of active) {
    if (a.ops.length === 0) continue;
    const to = from + a.ops.length;
    a.results = results.slice(from, to);
    from = to;
  }
}

/** What signals read besides the store, per snapshot: the process's geo reader and its lists. */
function signalEnvs(geo: GeoReader | undefined): (snapshot: PolicySnapshot) => SignalEnv {
  const envs = new WeakMap<PolicySnapshot, SignalEnv>();
  return (snapshot) => {
    let env = envs.get(snapshot);
    if (env === undefined) {
      const { ipList, asnList } = snapshot.lists;
      env = geo === undefined ? { ipList, asnList } : { geo, ipList, asnList };
      envs.set(snapshot, env);
    }
    return env;
  };
}

/** Everything a signal may read about this request, the location looked up at most once. */
function signalContext(check: CheckRun, licensed: Licensed, env: SignalEnv): SignalContext {
  const { req, route } = check;
  const { policy } = check.snapshot;
  let located = false;
  let location: ReturnType<SignalContext["location"]>;
  return {
    policy,
    req,
    caller: licensed.caller,
    route,
    tierName: licensed.tierName,
    tier: licensed.tier,
    now: req.receivedAt,
    env,
    location() {
      if (!located) {
        located = true;
        location = env.geo?.lookup(req.clientIp);
      }
      return location;
    },
    deviceId: deviceIdOf(req, policy.doc.signals.device),
    ...credentialFacts(policy.doc, req, licensed.identity, licensed.caller),
  };
}

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
  const cfg = doc.signals.client_class;
  const routed = req.contextExtensions.client_class;
  // a mesh peer or an API key is the class its policy entry says (machine unless told
  // otherwise); the route's own word still comes first, as for tokens
  const own =
    cfg.enabled && routed !== "browser" && routed !== "machine" ? identity.clientClass : undefined;
  return {
    claims,
    credentialSource: source,
    clientClass: own ?? clientClassOf(cfg, { req, claims, subject: caller.subject, source }),
  };
}

const NO_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
