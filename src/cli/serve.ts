import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { loadPolicyFile } from "../access/policy.js";
import { type App, createApp } from "../app.js";
import { createPolicyWatcher, type PolicyWatcher } from "../config/policy-watch.js";
import { loadSettings, type Settings } from "../config/settings.js";
import { RiskgateError } from "../errors.js";
import { openGeoFromSettings } from "../geo/geo-settings.js";
import { createStoreFromSettings } from "../state/create-store.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import { createTelemetry, type Telemetry, telemetryOptions } from "../telemetry/telemetry.js";
import { routeGrpcLogs } from "../transport/grpc-log.js";
import { createDevKeySource, loadOrCreateDevKeys } from "./dev-keys.js";
import { EXIT, exitCodeOf, fatalLine, listenError } from "./fatal.js";
import { SERVING_MESSAGE, superviseWorkers } from "./supervisor.js";

/** `riskgate serve --help`. */
export const HELP = `riskgate serve: run the ext_authz server (the default command)

Usage: riskgate [serve] [--dev] [--policy FILE] [--address HOST:PORT] [--workers N]

Flags (each overrides its environment variable; every setting: docs/reference/settings.md):
  --dev                 trust the local dev signing key (riskgate token) when the policy has
                        no identity.jwks; also turns on the HTTP listener on 0.0.0.0:9192 (RISKGATE_DEV)
  --policy FILE         the policy YAML file (RISKGATE_POLICY, default policies/demo.yaml)
  --address HOST:PORT   gRPC ext_authz and health address (RISKGATE_GRPC_ADDRESS, default 0.0.0.0:9191)
  --workers N           server processes sharing the gRPC port (RISKGATE_WORKERS, default 1)

Signals: SIGTERM drains (health NOT_SERVING for RISKGATE_DRAIN_DELAY_MS, then in-flight
Checks finish), SIGINT stops without the delay, SIGHUP reloads the policy.

Example:
  riskgate serve --dev
  REDIS_URL=redis://127.0.0.1:6379 riskgate serve --policy /etc/riskgate/policy.yaml --workers 2

Exit codes (a failed start prints one line: riskgate: RISKGATE_<CODE>: <cause>; <what to change>):
  0  stopped cleanly after a drain
  1  an unexpected error, or the drain failed (RISKGATE_INTERNAL)
  2  a setting, the policy file, a list file or a geolocation database is wrong
  3  the keys could not be loaded (no identity.jwks without --dev, or the JWKS unreachable)
  4  the gRPC or metrics address could not be bound (RISKGATE_LISTEN_FAILED)`;

/**
 * `riskgate serve`: settings -> policy -> app -> gRPC server. SIGTERM turns health NOT_SERVING,
 * keeps answering Checks for RISKGATE_DRAIN_DELAY_MS, then stops accepting, lets in-flight
 * checks finish and exits 0 (SIGINT skips the delay); SIGHUP reloads the policy. Every start-up
 * error closes what was already opened and exits with a documented code (`fatal.ts`) after one
 * stderr line naming the cause and the setting to change.
 */
export async function runServe(
  args: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let settings: Settings;
  try {
    settings = settingsFromArgs(args, env);
  } catch (err) {
    process.stderr.write(`${fatalLine(err)}\n`);
    return exitCodeOf(err);
  }
  const logger = createLogger(settings.logLevel);
  routeGrpcLogs(logger);
  if (settings.workers > 1 && cluster.isPrimary) return superviseWorkers(settings, logger);

  const opened: Closer[] = [];
  let started: Started;
  try {
    started = await startServer(settings, logger, opened);
  } catch (err) {
    await closeAll(opened, logger);
    process.stderr.write(`${fatalLine(err)}\n`);
    return exitCodeOf(err);
  }
  const { app, telemetry, watcher } = started;
  cluster.worker?.send(SERVING_MESSAGE);
  process.on("SIGHUP", () => void watcher.reload("signal"));

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      const drainDelayMs = signal === "SIGINT" ? 0 : settings.drainDelayMs;
      logger.info({ signal, drainDelayMs, graceMs: settings.shutdownGraceMs }, "draining");
      watcher.close();
      app
        .shutdown(settings.shutdownGraceMs, drainDelayMs)
        .then(() => telemetry.shutdown())
        // a cluster worker's IPC channel would keep it alive after the drain
        .then(() => cluster.worker?.disconnect())
        .then(
          () => {
            logger.info("riskgate stopped");
            resolve(EXIT.ok);
          },
          (err: unknown) => {
            logger.error({ err }, "shutdown failed");
            resolve(EXIT.failed);
          },
        );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

/**
 * The `serve` flags, passed through the settings table's own parsers so that a flag and its
 * environment variable are checked once, by the same rule.
 */
export function settingsFromArgs(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): Settings {
  let values: { dev?: boolean; policy?: string; address?: string; workers?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dev: { type: "boolean" },
        policy: { type: "string" },
        address: { type: "string" },
        workers: { type: "string" },
      },
    }));
  } catch (err) {
    throw new RiskgateError("RISKGATE_SETTING_INVALID", (err as Error).message, {}, { cause: err });
  }
  return loadSettings(
    env,
    {},
    {
      ...(values.dev === undefined ? {} : { dev: { flag: "--dev", raw: String(values.dev) } }),
      ...(values.policy === undefined
        ? {}
        : { policyFile: { flag: "--policy", raw: values.policy } }),
      ...(values.address === undefined
        ? {}
        : { grpcAddress: { flag: "--address", raw: values.address } }),
      ...(values.workers === undefined
        ? {}
        : { workers: { flag: "--workers", raw: values.workers } }),
    },
  );
}

/** Something start-up opened, closed in reverse order when a later step fails. */
interface Closer {
  readonly name: string;
  close(): Promise<void> | void;
}

interface Started {
  readonly app: App;
  readonly telemetry: Telemetry;
  readonly watcher: PolicyWatcher;
}

/** How long one closer may take after a failed start before the process gives up on it. */
const CLOSE_TIMEOUT_MS = 2000;

/**
 * The one start-up path. Each step that opens something pushes its closer onto `opened` before
 * the next step runs, so a failure anywhere leaves the caller a complete list to close.
 */
async function startServer(settings: Settings, logger: Logger, opened: Closer[]): Promise<Started> {
  const policy = await loadPolicyFile(settings.policyFile);
  const devKeys = settings.dev
    ? createDevKeySource((await loadOrCreateDevKeys(settings.devKeysDir)).publicJwks)
    : undefined;
  if (settings.dev)
    logger.warn({ dir: settings.devKeysDir }, "dev mode: trusting the local dev signing key");
  const geo = await openGeoFromSettings(settings);
  if (geo) logger.info({ geo: geo.description }, "geolocation loaded");
  const telemetry = createTelemetry(telemetryOptions(settings), {
    logger,
    ...(cluster.isWorker ? { primary: process } : {}),
  });
  opened.push({ name: "telemetry", close: () => telemetry.shutdown() });
  await telemetry.start().catch((err: unknown) => {
    throw listenError(err, settings.metricsAddress, "RISKGATE_METRICS_ADDRESS");
  });
  const store = await createStoreFromSettings(settings, logger, {
    onStateChange: telemetry.breakerState,
    onCall: telemetry.storeCall,
  });
  const storeCloser = { name: "store", close: () => store.close() };
  opened.push(storeCloser);
  const app = createApp({
    settings,
    logger,
    store,
    telemetry,
    ...(devKeys ? { devKeys } : {}),
    ...(geo ? { geo } : {}),
  });
  // the app owns the store from here: its shutdown closes lists, server and store
  opened[opened.indexOf(storeCloser)] = { name: "app", close: () => app.shutdown(0) };
  await app.start(policy);

  // live reload: file changes (incl. Kubernetes ConfigMap symlink swaps) and SIGHUP; a policy
  // that fails validation or whose keys do not load keeps the last good one
  const watcher = createPolicyWatcher(
    {
      load: loadPolicyFile,
      onPolicy: async (next, reason) => {
        await app.setPolicy(next);
        telemetry.policyReload(true);
        logger.info({ reason, version: next.version }, "policy reloaded");
      },
      onError: (err, reason) => {
        telemetry.policyReload(false);
        logger.error({ reason, err }, "policy reload failed; keeping the last good policy");
      },
    },
    { file: settings.policyFile, currentVersion: app.current().policy.version },
  );
  return { app, telemetry, watcher };
}

/** Closes in reverse order, each step bounded, none allowed to stop the others. */
async function closeAll(opened: readonly Closer[], logger: Logger): Promise<void> {
  for (const c of [...opened].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => c.close()),
        new Promise((resolve) => {
          timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      logger.warn({ err, step: c.name }, "closing after a failed start failed");
    } finally {
      clearTimeout(timer);
    }
  }
}
