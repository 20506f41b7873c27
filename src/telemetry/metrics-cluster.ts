import { randomUUID } from "node:crypto";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { Exposition } from "./metrics-server.js";

const REQUEST = "riskgate:metrics:request";
const RESPONSE = "riskgate:metrics:response";

type Listener = (message: unknown) => void;

/** A worker's end of the IPC channel (`process` in a cluster worker). */
export interface PrimaryChannel {
  on(event: "message", listener: Listener): unknown;
  off(event: "message", listener: Listener): unknown;
  send?(message: unknown): boolean;
}

/** The primary's end of one worker's channel (a `cluster.Worker`). */
export interface WorkerChannel {
  on(event: "message", listener: Listener): unknown;
  off(event: "message", listener: Listener): unknown;
  send(message: unknown): boolean;
}

/** One process's metrics, as `registry.getMetricsAsJSON()` gives them. */
type Snapshot = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;

interface Request {
  readonly type: typeof REQUEST;
  readonly id: string;
}

interface Response {
  readonly type: typeof RESPONSE;
  readonly id: string;
  readonly metrics: Snapshot;
}

const isRequest = (m: unknown): m is Request =>
  typeof m === "object" && m !== null && (m as Request).type === REQUEST;
const isResponse = (m: unknown): m is Response =>
  typeof m === "object" && m !== null && (m as Response).type === RESPONSE;

/**
 * Worker side of `--workers N`: the workers share the gRPC port, so a /metrics port shared the
 * same way would answer each scrape from one random worker. Instead each worker answers the
 * primary's requests over IPC with its own registry. Returns a function that stops answering.
 */
export function answerMetricsRequests(registry: Registry, channel: PrimaryChannel): () => void {
  const listener: Listener = (message) => {
    if (!isRequest(message)) return;
    registry.getMetricsAsJSON().then(
      (metrics) => channel.send?.({ type: RESPONSE, id: message.id, metrics }),
      () => channel.send?.({ type: RESPONSE, id: message.id, metrics: [] }),
    );
  };
  channel.on("message", listener);
  return () => channel.off("message", listener);
}

/**
 * Primary side: asks every worker for its metrics and merges them (counters and histograms
 * summed, gauges by their `aggregator`). A worker that does not answer within `timeoutMs` (it is
 * starting or dying) is left out of this scrape rather than failing it.
 */
export async function collectClusterMetrics(
  workers: readonly WorkerChannel[],
  timeoutMs: number,
): Promise<Exposition> {
  const id = randomUUID();
  const answers = await Promise.all(
    workers.map(
      (worker) =>
        new Promise<Snapshot | undefined>((resolve) => {
          const done = (metrics: Snapshot | undefined) => {
            clearTimeout(timer);
            worker.off("message", listener);
            resolve(metrics);
          };
          const listener: Listener = (message) => {
            if (isResponse(message) && message.id === id) done(message.metrics);
          };
          const timer = setTimeout(done, timeoutMs, undefined);
          worker.on("message", listener);
          try {
            worker.send({ type: REQUEST, id });
          } catch {
            done(undefined); // the worker's channel is closed
          }
        }),
    ),
  );
  const merged = AggregatorRegistry.aggregate(
    answers.filter((a): a is Snapshot => a !== undefined),
  );
  return { contentType: merged.contentType, body: await merged.metrics() };
}
