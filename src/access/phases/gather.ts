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
    async run(check, licensed) {
      const ctx = signalContext(check, licensed, envOf(check.snapshot));
      check.learned.deviceId = ctx.deviceId;
      check.trace?.context?.(ctx);
      const scoring =
        deps.webhooks !== undefined && wantsWebhook(ctx)
          ? deps.webhooks.ask(check.snapshot, ctx)
          : undefined;
      const wanted: { signal: Signal; ops: readonly StoreOp[] }[] = [];
      const batch: StoreOp[] = [];
      for (const signal of deps.signals) {
        if (!signal.enabled(ctx)) continue;
        const ops = signal.ops === undefined ? NO_OPS : signal.ops(ctx);
        wanted.push({ signal, ops });
        for (const op of ops) batch.push(op);
      }
      let results: readonly OpResult<StoreOp>[] | undefined = NO_RESULTS;
      let notes = NO_REASONS;
      if (batch.length > 0) {
        results = await read(check, deps, batch);
        if (results === undefined) {
          const failure = failureModeOf(check.snapshot.policy, licensed.tier, check.route);
          const reason: Reason = { code: "failure.store", points: 0, detail: failure };
          if (!failureLetsThrough(failure, check.req)) return deny(licensed.who, "failure", reason);
          notes = [reason];
        }
      }
      check.learned.stateRead = results !== undefined;
      const active = alignResults(wanted, results);
      return next({ ctx, who: licensed.who, active, notes, scoring });
    },
  };
}

/** The deciding batch's results, or undefined when the store failed (timed in `timings.store`). */
async function read(
  check: CheckRun,
  deps: GatherDeps,
  batch: readonly StoreOp[],
): Promise<readonly OpResult<StoreOp>[] | undefined> {
  const start = performance.now();
  try {
    const { results } = await deps.store.exec({ ops: batch, now: check.req.receivedAt });
    check.timings.store = { start, end: performance.now(), ops: batch.length, ok: true };
    return results;
  } catch (err) {
    check.timings.store = { start, end: performance.now(), ops: batch.length, ok: false };
    deps.onStoreError?.(err);
    return undefined;
  }
}

/** Each signal's share of the batch's results, in op order (none read: undefined for the stateful). */
function alignResults(
  wanted: readonly { signal: Signal; ops: readonly StoreOp[] }[],
  results: readonly OpResult<StoreOp>[] | undefined,
): ActiveSignal[] {
  let from = 0;
  return wanted.map(({ signal, ops }) => {
    const to = from + ops.length;
    const mine = ops.length === 0 ? NO_RESULTS : results?.slice(from, to);
    from = to;
    return { signal, ops, results: mine };
  });
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
