import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { createApp } from "../app.js";
import { loadPolicyFile } from "../config/policy.js";
import { createPolicyWatcher } from "../config/policy-watch.js";
import { loadSettings, type Settings } from "../config/settings.js";
import { PolicyError, RiskgateError } from "../errors.js";
import { type GeoReader, openEmbeddedGeoReader, openGeoReader } from "../geo/geo-reader.js";
import { createStoreFromSettings } from "../state/create-store.js";
import { createLogger } from "../telemetry/logger.js";
import { collectClusterMetrics } from "../telemetry/metrics-cluster.js";
import { serveMetrics } from "../telemetry/metrics-server.js";
import { createTelemetry, telemetryOptions } from "../telemetry/telemetry.js";
import { createDevKeySource, loadOrCreateDevKeys } from "./dev-keys.js";

/**
 * `riskgate serve`: settings -> policy -> app -> gRPC server; SIGTERM/SIGINT drain in-flight
 * checks and exit 0; SIGHUP reloads the policy (an invalid file keeps the last good one).
 * Startup errors (bad settings, invalid policy, unreachable keys) exit 2 with the reason.
 */
export async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dev: { type: "boolean" },
      policy: { type: "string" },
      address: { type: "string" },
      workers: { type: "string" },
    },
  });
  let settings: Settings;
  try {
    settings = loadSettings(process.env, {
      ...(values.dev === undefined ? {} : { dev: values.dev }),
      ...(values.policy === undefined ? {} : { policyFile: values.policy }),
      ...(values.address === undefined ? {} : { grpcAddress: values.address }),
      ...(values.workers === undefined ? {} : { workers: Number(values.workers) }),
    });
    if (!Number.isInteger(settings.workers) || settings.workers < 1) {
      throw new Error(`--workers wants a whole number of processes, got ${values.workers}`);
    }
  } catch (err) {
    process.stderr.write(`riskgate: ${(err as Error).message}\n`);
    return 2;
  }
  const logger = createLogger(settings.logLevel);
  if (settings.workers > 1 && cluster.isPrimary) {
    return superviseWorkers(settings.workers, settings.metricsAddress, logger);
  }
  const started = await (async () => {
    try {
      const policy = await loadPolicyFile(settings.policyFile);
      const devKeys = settings.dev
        ? createDevKeySource((await loadOrCreateDevKeys(settings.devKeysDir)).publicJwks)
        : undefined;
      if (settings.dev)
        logger.warn({ dir: settings.devKeysDir }, "dev mode: trusting the local dev signing key");
      const geo = await openGeo(settings);
      if (geo) logger.info({ geo: geo.description }, "geolocation loaded");
      const telemetry = createTelemetry(telemetryOptions(settings, process.env), {
        logger,
        ...(cluster.isWorker ? { primary: process } : {}),
      });
      await telemetry.start();
      const store = await createStoreFromSettings(settings, logger, {
        onStateChange: telemetry.breakerState,
        onCall: telemetry.storeCall,
      });
      const created = createApp({
        settings,
        logger,
        store,
        telemetry,
        ...(devKeys ? { devKeys } : {}),
        ...(geo ? { geo } : {}),
      });
      await created.start(policy);
      return { app: created, telemetry };
    } catch (err) {
      if (err instanceof PolicyError || err instanceof RiskgateError) {
        process.stderr.write(`riskgate: ${err.code}: ${err.message}\n`);
        return undefined;
      }
      throw err;
    }
  })();
  if (started === undefined) return 2;
  const { app, telemetry } = started;

  // live reload: file changes (incl. Kubernetes ConfigMap symlink swaps) and SIGHUP; a policy
  // that fails validation or whose keys do not load keeps the last good one
  const watcher = createPolicyWatcher(
    {
      load: loadPolicyFile,
      onPolicy: async (policy, reason) => {
        await app.setPolicy(policy);
        telemetry.policyReload(true);
        logger.info({ reason, version: policy.version }, "policy reloaded");
      },
      onError: (err, reason) => {
        telemetry.policyReload(false);
        logger.error({ reason, err }, "policy reload failed; keeping the last good policy");
      },
    },
    { file: settings.policyFile, currentVersion: app.current().policy.version },
  );
  process.on("SIGHUP", () => void watcher.reload("signal"));

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, graceMs: settings.shutdownGraceMs }, "draining in-flight checks");
      watcher.close();
      app
        .shutdown(settings.shutdownGraceMs)
        .then(() => telemetry.shutdown())
        // a cluster worker's IPC channel would keep it alive after the drain
        .then(() => cluster.worker?.disconnect())
        .then(
          () => {
            logger.info("riskgate stopped");
            resolve(0);
          },
          (err: unknown) => {
            logger.error({ err }, "shutdown failed");
            resolve(1);
          },
        );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

/** Opens the geolocation databases the settings ask for (none when RISKGATE_GEO=off). */
async function openGeo(settings: Settings): Promise<GeoReader | undefined> {
  const files = (list: string) =>
    list
      .split(",")
      .map((f) => f.trim())
      .filter((f) => f !== "");
  if (settings.geo === "off") return undefined;
  if (settings.geo === "embedded") {
    return openEmbeddedGeoReader({
      cacheSize: settings.geoCacheSize,
      asnFiles: files(settings.geoAsnFiles),
    });
  }
  return openGeoReader({
    cityFiles: files(settings.geoCityFiles),
    asnFiles: files(settings.geoAsnFiles),
    cacheSize: settings.geoCacheSize,
  });
}

/**
 * The primary of `--workers N`: forks N server processes that share the gRPC port (node:cluster
 * hands accepted connections to the workers), passes signals on, replaces a worker that dies
 * unexpectedly, and exits once all have drained.
 */
async function superviseWorkers(
  count: number,
  metricsAddress: string,
  logger: ReturnType<typeof createLogger>,
): Promise<number> {
  let stopping = false;
  let worst = 0;
  for (let i = 0; i < count; i++) cluster.fork();
  // one /metrics for the machine: the primary asks every worker over IPC and merges the answers
  const metrics =
    metricsAddress === "off" || metricsAddress === ""
      ? undefined
      : await serveMetrics(metricsAddress, () =>
          collectClusterMetrics(
            Object.values(cluster.workers ?? {}).filter((w) => w !== undefined),
            2000,
          ),
        );
  cluster.on("exit", (worker, code, signal) => {
    if (code !== 0) worst = Math.max(worst, code ?? 1);
    if (!stopping) {
      logger.error({ pid: worker.process.pid, code, signal }, "worker died; starting another");
      cluster.fork();
    }
  });
  logger.info({ workers: count }, "riskgate primary supervising workers");
  return new Promise((resolve) => {
    const forward = (signal: NodeJS.Signals) => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    };
    process.on("SIGHUP", () => forward("SIGHUP"));
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      forward(signal);
      const check = () => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          void metrics?.close();
          resolve(worst);
        } else setTimeout(check, 50);
      };
      check();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
