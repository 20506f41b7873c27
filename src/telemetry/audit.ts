import { type DestinationStream, type Logger, multistream, pino } from "pino";
import type { DecisionEvent } from "../transport/envoy-grpc.js";
import { REDACT_PATHS } from "./logger.js";
import { hashId } from "./tracing.js";

export interface AuditOptions {
  /** Share of allow decisions written (0..1); every other outcome is always written. */
  readonly allowSampleRate: number;
  /** Subject and org as is, or hashed with `salt`. */
  readonly subject: "hash" | "plain";
  readonly salt: string;
  /** Main destination (default: stdout, asynchronous). */
  readonly destination?: DestinationStream;
  /** A second destination file (appended, asynchronous). */
  readonly file?: string;
  /** Injected in tests. */
  readonly random?: () => number;
}

export interface Audit {
  record(event: DecisionEvent): void;
  flush(): Promise<void>;
}

/**
 * One structured pino line per decision, for compliance reviews: what was decided, why (reason
 * codes with points), for whom (tier, subject and org, hashed if asked), on which route, under
 * which policy version and mode. Lines are built from the verdict only, never from raw
 * headers, so no token, cookie or API key can reach them; pino's redaction is a second guard.
 * Writes are asynchronous (buffered), so logging never blocks a decision.
 */
export function createAudit(options: AuditOptions): Audit {
  const streams: { stream: DestinationStream }[] = [
    { stream: options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }) },
  ];
  if (options.file !== undefined) {
    streams.push({
      stream: pino.destination({
        dest: options.file,
        sync: false,
        append: true,
        mkdir: true,
        minLength: 4096,
      }),
    });
  }
  const logger: Logger = pino(
    {
      base: { log: "audit" },
      messageKey: "event",
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    streams.length === 1 ? streams[0]?.stream : multistream(streams),
  );
  const random = options.random ?? Math.random;
  const who = (value: string | undefined) =>
    value === undefined
      ? undefined
      : options.subject === "hash"
        ? hashId(options.salt, value)
        : value;

  return {
    record(event) {
      const { verdict, enforced } = event.decision;
      if (enforced.kind === "allow" && random() >= options.allowSampleRate) return;
      const req = event.req;
      const traceparent = event.metadata.get("traceparent")[0] ?? req?.headers.get("traceparent");
      logger.info(
        {
          request_id: verdict.requestId,
          trace_id: typeof traceparent === "string" ? traceparent.split("-")[1] : undefined,
          decision: verdict.kind,
          ...(verdict.shadowOf === undefined ? {} : { would_be: verdict.shadowOf }),
          score: verdict.score,
          reasons: verdict.reasons.map((r) => ({
            code: r.code,
            points: r.points,
            ...(r.detail === undefined ? {} : { detail: r.detail }),
          })),
          tier: verdict.tier,
          entitlement: verdict.entitlement,
          route: verdict.route,
          subject: who(verdict.subject),
          org: who(verdict.org),
          client_ip: req?.clientIp,
          method: req?.method,
          host: req?.host,
          path: req?.path,
          policy_version: event.decision.policyVersion,
          mode: event.decision.mode,
          failure_mode: event.decision.failureMode,
          latency_ms: Number(event.durationNs) / 1e6,
        },
        "decision",
      );
    },
    flush: () =>
      new Promise((resolve) => {
        logger.flush(() => resolve());
      }),
  };
}
