import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../telemetry/logger.js";

/**
 * Sends grpc-js's own log lines (written to stderr by default) to the operational log at debug
 * level, tagged `component: "grpc-js"`. riskgate reports every failure that matters itself: a
 * bind failure comes back from `bindAsync` and ends the start with one line naming the setting,
 * so grpc-js's line before it would be a second, unexplained one. grpc-js keeps one logger per
 * process, so the process's entry point (`riskgate serve`) calls this once.
 */
export function routeGrpcLogs(logger: Logger): void {
  const line =
    (severity: string) =>
    (...args: unknown[]) => {
      logger.debug({ component: "grpc-js", severity }, format(...args));
    };
  grpc.setLogger({ error: line("error"), info: line("info"), debug: line("debug") });
}
