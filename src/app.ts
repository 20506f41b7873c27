import { readFile } from "node:fs/promises";
import type * as grpc from "@grpc/grpc-js";
import { type ApiKeyFiles, createApiKeyFiles } from "./access/api-keys/key-files.js";
import type { KeySource } from "./access/key-source.js";
import { createPipeline, type Pipeline } from "./access/pipeline.js";
import type { Policy } from "./access/policy.js";
import type { PolicySnapshot } from "./access/policy-snapshot.js";
import { buildSnapshot } from "./app-snapshot.js";
import { type ClearanceKeys, devClearanceKeys, loadClearanceKeys } from "./challenge/keys.js";
import {
  type ChallengeService,
  createChallengeService,
  withChallenges,
} from "./challenge/service.js";
import { createSiteVerifier } from "./challenge/siteverify.js";
import type { Settings } from "./config/settings.js";
import { RiskgateError } from "./errors.js";
import type { GeoReader } from "./geo/geo-reader.js";
import { createListRegistry, type ListRegistry } from "./geo/list-registry.js";
import { bindGrpc, createGrpcServer, drainGrpc, startHttpListener } from "./listeners.js";
import { createMemoryStore } from "./state/memory-store.js";
import type { Store } from "./state/store.js";
import type { Logger } from "./telemetry/logger.js";
import { createSubjectHasher } from "./telemetry/subject-hash.js";
import type { Telemetry } from "./telemetry/telemetry.js";
import { createAdmission } from "./transport/admission.js";
import { createHealth, type Health, ServingStatus } from "./transport/health.js";
import type { HttpAuthzServer } from "./transport/http-authz.js";
import { warmUp } from "./warm-up.js";

export interface AppDeps {
  readonly settings: Settings;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Defaults to the embedded in-memory store. */
  readonly store?: Store;
  /** Dev mode's key source, used when the policy has no identity.jwks. */
  readonly devKeys?: KeySource;
  /** Geolocation for the geo signals (off when absent). */
  readonly geo?: GeoReader;
  /** Tracing, metrics and audit; the app feeds it every decision. */
  readonly telemetry?: Telemetry;
  /** Keys for browser challenges; else RISKGATE_CLEARANCE_KEYS_FILE, else generated in dev. */
  readonly clearanceKeys?: ClearanceKeys;
  /** fetch for CAPTCHA siteverify calls (tests serve the contract locally). */
  readonly siteverifyFetch?: typeof fetch;
}

export interface App {
  /** Loads keys for the policy, binds the gRPC port, turns health SERVING. Returns the port. */
  start(policy: Policy): Promise<number>;
  /**
   * Builds the new policy's whole snapshot (routes, lists, keys), swaps it in one step, then
   * releases what the old one held. Rejects, with the old one still serving in full, when any
   * part fails. Calls run one at a time, in order.
   */
  setPolicy(policy: Policy): Promise<void>;
  current(): PolicySnapshot;
  readonly health: Health;
  readonly pipeline: Pipeline;
  /** The HTTP forward-auth listener's port, once started; undefined when it is off. */
  httpPort(): number | undefined;
  /**
   * Drains: health NOT_SERVING while Checks are still answered for `drainDelayMs`, then stops
   * accepting, lets in-flight checks finish (up to graceMs), closes the lists and the store.
   * Safe after a failed `start()`: it closes whatever was opened.
   */
  shutdown(graceMs: number, drainDelayMs?: number): Promise<void>;
}

/** Wires the server: transports -> pipeline -> store, around one swappable policy snapshot. */
export function createApp(deps: AppDeps): App {
  const { settings, logger } = deps;
  const store = deps.store ?? createMemoryStore();
  const health = createHealth();
  const lists = createListRegistry({ logger });
  const apiKeyFiles = createApiKeyFiles({ logger });
  const pipeline = appPipeline(deps, store);
  let snapshot: PolicySnapshot | undefined;
  let challenges: ChallengeService | undefined;
  let server: grpc.Server | undefined;
  let httpServer: HttpAuthzServer | undefined;
  // the reload in progress: reloads run one after another, so each builds on the last swap
  let reloading: Promise<void> = Promise.resolve();

  const current = (): PolicySnapshot => {
    if (snapshot === undefined) {
      throw new RiskgateError("RISKGATE_INTERNAL", "riskgate app not started");
    }
    return snapshot;
  };
  const build = (policy: Policy) =>
    buildSnapshot(deps, policy, {
      lists,
      apiKeyFiles,
      // keys given up front count before start() has read the rest
      hasClearanceKeys: challenges !== undefined || deps.clearanceKeys !== undefined,
      previous: snapshot,
    });
  const boundary = boundaryDeps(deps, current);

  return {
    health,
    pipeline,
    current,
    async start(policy) {
      challenges = await startChallenges(deps, store);
      const served = challenges === undefined ? pipeline : withChallenges(pipeline, challenges);
      try {
        snapshot = await build(policy);
      } catch (err) {
        lists.close(); // list watchers opened for this policy
        apiKeyFiles.close();
        throw err;
      }
      const grpcServer = createGrpcServer({ pipeline: served, ...boundary }, health, settings);
      server = grpcServer;
      const port = await bindGrpc(grpcServer, settings.grpcAddress).catch((err: unknown) => {
        // nothing is bound: let go of the lists' watchers too
        server = undefined;
        lists.close();
        apiKeyFiles.close();
        throw err;
      });
      httpServer = await startHttp(deps, { served, challenges, health, boundary });
      await goLive(deps, { store, health, snapshot: current(), policy, port });
      return port;
    },
    setPolicy(policy) {
      const swap = reloading.then(async () => {
        // built in full before the swap; a failure leaves the old snapshot as it was
        const next = await build(policy);
        const old = snapshot;
        snapshot = next;
        old?.close();
      });
      reloading = swap.catch(() => {});
      return swap;
    },
    httpPort: () => httpServer?.port,
    shutdown: (graceMs, drainDelayMs = 0) =>
      drainAndClose(
        { health, logger, server, httpServer, lists, apiKeyFiles, store },
        graceMs,
        drainDelayMs,
      ),
  };
}

/**
 * Reports SERVING once every part ran once: the first Checks must not pay for first use.
 */
async function goLive(
  deps: AppDeps,
  live: { store: Store; health: Health; snapshot: PolicySnapshot; policy: Policy; port: number },
): Promise<void> {
  const { settings, logger } = deps;
  const { policy } = live;
  await warmUp(live.snapshot, {
    store: live.store,
    clock: deps.clock ?? Date.now,
    logger,
    geo: deps.geo,
    settings,
  });
  live.health.set(ServingStatus.SERVING);
  logger.info(
    {
      address: settings.grpcAddress,
      port: live.port,
      policy: policy.source,
      version: policy.version,
    },
    "riskgate serving",
  );
}

/**
 * The HTTP forward-auth listener (undefined when it is off): the gRPC listener's pipeline and
 * boundary, with the browser challenges and its own proxy settings.
 */
function startHttp(
  deps: AppDeps,
  parts: {
    readonly served: Pipeline;
    readonly challenges: ChallengeService | undefined;
    readonly health: Health;
    readonly boundary: ReturnType<typeof boundaryDeps>;
  },
): Promise<HttpAuthzServer | undefined> {
  const { settings } = deps;
  const { challenges, health } = parts;
  return startHttpListener(settings, deps.logger, {
    pipeline: parts.served,
    ...(challenges === undefined ? {} : { challenges }),
    trustedProxies: settings.httpTrustedProxies,
    ...(settings.httpClientCertHeader === ""
      ? {}
      : { clientCertHeader: settings.httpClientCertHeader }),
    ready: () => health.get() === ServingStatus.SERVING,
    ...parts.boundary,
  });
}

/** What both listeners hand to the decision boundary besides the pipeline. */
function boundaryDeps(deps: AppDeps, current: () => PolicySnapshot) {
  return {
    runtime: current,
    clock: deps.clock ?? Date.now,
    logger: deps.logger,
    trustedHops: deps.settings.trustedHops,
    // one bound on Checks in flight for both listeners: they share the event loop
    admission: createAdmission(deps.settings.maxInFlight),
    ...(deps.telemetry
      ? {
          onDecision: deps.telemetry.onDecision,
          inflight: deps.telemetry.inflight,
          onRefused: deps.telemetry.refused,
        }
      : {}),
  };
}

/** The pipeline of the server's Checks: its store failures logged, its webhook pseudonymous. */
function appPipeline(deps: AppDeps, store: Store): Pipeline {
  return createPipeline({
    store,
    clock: deps.clock ?? Date.now,
    ...(deps.geo ? { geo: deps.geo } : {}),
    onStoreError: throttledLog(deps.logger, 10_000, "store call failed; failure mode applied"),
    // the webhook sees the subject as the audit log does: the same keyed pseudonym
    pseudonym: createSubjectHasher(deps.settings.subjectSalt),
    ...(deps.telemetry ? { webhook: { onBreakerState: deps.telemetry.webhookBreakerState } } : {}),
  });
}

/**
 * Drains: health NOT_SERVING while Checks are still answered for `drainDelayMs`, then both
 * listeners stop accepting and let what is in flight finish (up to graceMs); the lists and the
 * store close last.
 */
async function drainAndClose(
  parts: {
    readonly health: Health;
    readonly logger: Logger;
    readonly server: grpc.Server | undefined;
    readonly httpServer: HttpAuthzServer | undefined;
    readonly lists: ListRegistry;
    readonly apiKeyFiles: ApiKeyFiles;
    readonly store: Store;
  },
  graceMs: number,
  drainDelayMs: number,
): Promise<void> {
  const { health, logger, server, httpServer } = parts;
  // health says NOT_SERVING first, while Checks are still answered, so that health-checking
  // load balancers and Envoy move away before the port closes (watchers see it too)
  health.set(ServingStatus.NOT_SERVING);
  if (drainDelayMs > 0 && server !== undefined) {
    logger.info({ drainDelayMs }, "NOT_SERVING; still answering Checks during the drain delay");
    await new Promise((resolve) => setTimeout(resolve, drainDelayMs));
  }
  health.close();
  // the HTTP forward-auth listener drains beside the gRPC server
  const httpClosed = httpServer?.close(graceMs);
  if (server !== undefined) await drainGrpc(server, graceMs, logger);
  await httpClosed;
  parts.lists.close();
  parts.apiKeyFiles.close();
  await parts.store.close();
}

/**
 * Browser challenges: the clearance keys (given, else RISKGATE_CLEARANCE_KEYS_FILE, else
 * generated in dev mode) and the service that issues and checks challenges. Undefined without
 * keys: a policy that asks for interactive challenges is then refused.
 */
async function startChallenges(deps: AppDeps, store: Store): Promise<ChallengeService | undefined> {
  const { settings, logger } = deps;
  let keys = deps.clearanceKeys;
  if (keys === undefined && settings.clearanceKeysFile !== "") {
    keys = await loadClearanceKeys(settings.clearanceKeysFile);
  } else if (keys === undefined && settings.dev) {
    keys = await devClearanceKeys(settings.devKeysDir);
  }
  if (keys === undefined) return undefined;
  return createChallengeService({
    keys,
    store,
    logger,
    captchaSecret: await readSecret(settings.captchaSecretFile),
    siteverify: createSiteVerifier(
      deps.siteverifyFetch === undefined ? {} : { fetch: deps.siteverifyFetch },
    ),
    ...(deps.telemetry ? { onOutcome: deps.telemetry.challenge } : {}),
  });
}

/** A secret file's contents, trimmed ("" when no file is set). */
async function readSecret(file: string): Promise<string> {
  if (file === "") return "";
  try {
    return (await readFile(file, "utf8")).trim();
  } catch (err) {
    throw new RiskgateError(
      "RISKGATE_SETTING_INVALID",
      `RISKGATE_CAPTCHA_SECRET_FILE: ${file} is not readable`,
      { setting: "RISKGATE_CAPTCHA_SECRET_FILE" },
      { cause: err },
    );
  }
}

/**
 * A warning logged at most once per `intervalMs` with the number of occurrences it stands for:
 * an outage fails every request, and one log line per request would block the event loop
 * exactly when it is busiest (metrics count every failure).
 */
function throttledLog(logger: Logger, intervalMs: number, msg: string): (err: unknown) => void {
  let last = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    logger.warn({ err: err instanceof Error ? err.message : String(err), suppressed }, msg);
    last = now;
    suppressed = 0;
  };
}
