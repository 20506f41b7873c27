import cluster, { type Worker } from "node:cluster";
import type { Settings } from "../config/settings.js";
import { RiskgateError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import { collectClusterMetrics } from "../telemetry/metrics-cluster.js";
import { type MetricsServer, serveMetrics } from "../telemetry/metrics-server.js";
import { EXIT, exitCodeOf, fatalLine, listenError } from "./fatal.js";

/** What a worker tells the primary once its gRPC port is bound and health is SERVING. */
export const SERVING_MESSAGE = { riskgate: "serving" } as const;

const isServingMessage = (m: unknown) =>
  typeof m === "object" && m !== null && (m as { riskgate?: unknown }).riskgate === "serving";

/**
 * The primary of `--workers N`: binds the one /metrics for the machine, forks N server processes
 * that share the gRPC port (node:cluster hands accepted connections to the workers), passes
 * signals on and exits once all have drained.
 *
 * A worker that exits before it reported serving is a start-up failure, not a crash: the
 * primary stops the others (SIGINT: no drain delay) and exits with that worker's code, whose
 * own stderr line says why. No respawn loop, no half-serving primary. A worker that dies after
 * it was serving is replaced; if the replacement cannot start, the same rule brings all down.
 */
export async function superviseWorkers(settings: Settings, logger: Logger): Promise<number> {
  const address = settings.metricsAddress;
  let metrics: MetricsServer | undefined;
  if (address !== "off" && address !== "") {
    try {
      // one /metrics for the machine: the primary asks every worker over IPC and merges
      metrics = await serveMetrics(address, () =>
        collectClusterMetrics(
          Object.values(cluster.workers ?? {}).filter((w) => w !== undefined),
          2000,
        ),
      );
    } catch (err) {
      const e = listenError(err, address, "RISKGATE_METRICS_ADDRESS");
      process.stderr.write(`${fatalLine(e)}\n`);
      return exitCodeOf(e);
    }
  }

  return new Promise<number>((resolve) => {
    const serving = new Set<number>();
    let stopping = false;
    let worst: number = EXIT.ok;
    const live = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    const forward = (signal: NodeJS.Signals) => {
      for (const w of live()) w.process.kill(signal);
    };
    const finishWhenEmpty = () => {
      if (live().length > 0) return;
      void (metrics?.close() ?? Promise.resolve()).finally(() => resolve(worst));
    };
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      forward(signal);
      finishWhenEmpty();
    };

    cluster.on("message", (worker, message) => {
      if (isServingMessage(message)) serving.add(worker.id);
    });
    cluster.on("exit", (worker, code, signal) => {
      const wasServing = serving.delete(worker.id);
      if (stopping) {
        if (code !== 0 && code !== null) worst = Math.max(worst, code);
        finishWhenEmpty();
        return;
      }
      if (!wasServing) {
        worst = code !== null && code > 0 ? code : EXIT.failed;
        const err = new RiskgateError(
          "RISKGATE_WORKER_FAILED",
          `worker ${worker.process.pid} exited (${code ?? signal}) before serving; stopping the other workers (the worker's own error is above)`,
          { pid: worker.process.pid, code, signal },
        );
        process.stderr.write(`${fatalLine(err)}\n`);
        stop("SIGINT");
        return;
      }
      logger.error({ pid: worker.process.pid, code, signal }, "worker died; starting another");
      cluster.fork();
    });

    process.on("SIGHUP", () => forward("SIGHUP"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    for (let i = 0; i < settings.workers; i++) cluster.fork();
    logger.info({ workers: settings.workers }, "riskgate primary supervising workers");
  });
}
