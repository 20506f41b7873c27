import { type DestinationStream, type Logger, pino } from "pino";
import type { Decision } from "../access/pipeline.js";
import type { DecisionEvent } from "./decision-event.js";
import { riskLevel } from "./risk-level.js";
import type { SubjectHasher } from "./subject-hash.js";
import { traceIdOf } from "./trace-header.js";
import type { TraceRef } from "./tracing.js";
import { userAgentClass } from "./user-agent-class.js";

/**
 * Longest values copied from the request into a line (characters): the request id comes from
 * the client's `x-request-id`, host and method from its request line, so a client could
 * otherwise make every line of a flood megabytes long. Longer values are cut and marked `…`.
 */
export const AUDIT_LIMITS = {
  request_id: 128,
  method: 16,
  host: 255,
  path: 2048,
} as const;

export interface AuditOptions {
  /** Share of allow decisions written (0..1); every other outcome is always written. */
  readonly allowSampleRate: number;
  /** Subject and org as is, or pseudonymised with `hash`. */
  readonly subject: "hash" | "plain";
  readonly hash: SubjectHasher;
  /** Main destination (default: stdout, asynchronous). */
  readonly destination?: DestinationStream;
  /** A second destination file (appended, asynchronous). */
  readonly file?: string;
  /** Sampling draw (tests inject one); Math.random by default. */
  readonly random?: () => number;
  /** Called for each line dropped because a destination could not keep up. */
  readonly onDrop?: () => void;
}

export interface Audit {
  /** Writes the decision's line (unless it is an allow sampled out). */
  record(event: DecisionEvent, trace: TraceRef | undefined): void;
  /** Writes out what is buffered. */
  flush(): Promise<void>;
  /** Flushes and closes the destinations riskgate opened. */
  close(): Promise<void>;
}

/** A file destination: asynchronous, bounded, written in whole lines. */
type FileStream = ReturnType<typeof pino.destination>;

/**
 * How the destinations riskgate opens write. Asynchronously, off the event loop (libuv's
 * thread pool): a line is handed over at once when no write is in flight, and lines arriving
 * during one are batched into the next. Chunks hold whole lines and at most PIPE_BUF bytes, so
 * they never tear against the operational log sharing stdout (and measured cheaper than large
 * chunks). A destination that cannot drain (a stuck pipe, a full disk) drops lines past 8 MiB,
 * counted in riskgate_audit_lines_dropped_total, instead of growing without bound.
 */
const STREAM_OPTIONS = {
  sync: false,
  minLength: 0,
  maxWrite: 4096,
  maxLength: 8 * 1024 * 1024,
} as const;

/** A JWT-shaped string (header.payload.signature, base64url, the header starting `{"`). */
const JWT_LIKE = /eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]*/g;

/**
 * One structured JSON line per decision, for compliance reviews: what was decided (and in
 * shadow mode what would have been), why (reason codes with points), for whom (tier, subject
 * and org, pseudonymised unless asked), on which route and entitlement, under which policy
 * version and mode, how long it took, and the trace it belongs to. Lines are built field by
 * field from the verdict, never from headers, so no token, cookie or API key can reach them;
 * a JWT-shaped string in the free-text fields (path, reason detail) is masked. Writes are
 * asynchronous and bounded, so logging never blocks a decision.
 */
export function createAudit(options: AuditOptions): Audit {
  const opened: FileStream[] = [];
  const open = (dest: number | string): FileStream => {
    const stream = openAuditStream(dest);
    stream.on("drop", () => options.onDrop?.());
    opened.push(stream);
    return stream;
  };
  const main = options.destination ?? open(1);
  const file = options.file === undefined ? undefined : open(options.file);
  const out: DestinationStream =
    file === undefined
      ? main
      : {
          write(line) {
            main.write(line);
            file.write(line);
          },
        };
  // no pino redaction here: it costs tens of microseconds a line, and the line's fields are
  // chosen one by one below (free text is masked), so there is nothing for it to find
  const logger: Logger = pino(
    { base: { log: "audit" }, messageKey: "event", timestamp: pino.stdTimeFunctions.isoTime },
    out,
  );
  const random = options.random ?? Math.random;
  const rate = options.allowSampleRate;
  const who = (value: string | undefined) =>
    value === undefined || options.subject === "plain" ? value : options.hash(value);

  return {
    record(event, traced) {
      const { enforced } = event.decision;
      // allows may be sampled; a denial, challenge or throttle (even shadowed) never is
      if (enforced.kind === "allow" && rate < 1 && random() >= rate) return;
      const sampleRate = enforced.kind === "allow" && rate < 1 ? rate : undefined;
      logger.info(auditLine(event, traced, who, sampleRate), "decision");
    },
    flush: () => Promise.all(opened.map(flushStream)).then(() => undefined),
    // ending waits for the writes in flight; stdout itself stays open for the operational log
    close: () => Promise.all(opened.map(endStream)).then(() => undefined),
  };
}

/** The fields of one decision's audit line, chosen one by one (free text masked). */
function auditLine(
  event: DecisionEvent,
  traced: TraceRef | undefined,
  who: (value: string | undefined) => string | undefined,
  sampleRate: number | undefined,
) {
  const { verdict } = event.decision;
  const req = event.req;
  const traceId =
    traced?.traceId ?? traceIdOf((name) => event.traceHeader(name) ?? req?.headers.get(name));
  const caller = event.decision.caller;
  return {
    request_id: cap(verdict.requestId, AUDIT_LIMITS.request_id),
    trace_id: traceId,
    span_id: traced?.spanId,
    decision: verdict.kind,
    would_be: verdict.shadowOf,
    score: verdict.score,
    risk_level: riskLevel(verdict.score),
    reasons: verdict.reasons.map((r) =>
      r.detail === undefined
        ? { code: r.code, points: r.points }
        : { code: r.code, points: r.points, detail: maskTokens(r.detail) },
    ),
    tier: verdict.tier,
    entitlement: verdict.entitlement,
    route: verdict.route,
    subject: who(verdict.subject),
    org: who(verdict.org),
    caller:
      caller === undefined
        ? undefined
        : {
            tier: caller.tier,
            entitlements: caller.entitlements,
            amr: caller.amr,
            acr: caller.acr || undefined,
            auth_time: caller.authTime,
            anonymous: caller.anonymous || undefined,
          },
    identity_source: event.decision.timings.identify?.method,
    peer: event.decision.timings.identify?.peer,
    client_ip: req?.clientIp || undefined,
    country: countryOf(event.decision),
    device: event.decision.deviceId ? who(event.decision.deviceId) : undefined,
    client_class: event.decision.clientClass,
    ua_class: req === undefined ? undefined : userAgentClass(req.headers.get("user-agent")),
    method: req === undefined ? undefined : cap(req.method, AUDIT_LIMITS.method),
    host: req === undefined ? undefined : cap(req.host, AUDIT_LIMITS.host),
    path: req === undefined ? undefined : cap(maskTokens(req.path), AUDIT_LIMITS.path),
    size: req === undefined ? undefined : declaredSize(req),
    received_at: req === undefined ? undefined : isoTime(req.receivedAt),
    policy_version: event.decision.policyVersion,
    mode: event.decision.mode,
    failure_mode: event.decision.failureMode,
    latency_ms: Number(event.durationNs) / 1e6,
    transport: event.transport === "http" ? "http" : undefined,
    sample_rate: sampleRate,
  };
}

/** Opens an audit destination (a file descriptor or a file path) as the audit log writes it. */
export function openAuditStream(dest: number | string): FileStream {
  return pino.destination({
    dest,
    ...STREAM_OPTIONS,
    ...(typeof dest === "string" ? { append: true, mkdir: true } : {}),
  });
}

/** Hands what the stream buffered to the OS (lines are written as they come: little waits). */
function flushStream(stream: FileStream): Promise<void> {
  // an error (fsync on a pipe, a closed stream) leaves nothing more to wait for
  return new Promise((resolve) => stream.flush(() => resolve()));
}

/** Resolves once the stream wrote everything and closed (never closing fds 1 and 2). */
function endStream(stream: FileStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    stream.once("error", () => resolve());
    stream.end();
  });
}

/** `value` cut to `max` characters (the last one an ellipsis when cut). */
function cap(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

/** The declared body size (the larger of Envoy's `size` and `content-length`), when known. */
function declaredSize(req: NonNullable<DecisionEvent["req"]>): number | undefined {
  const declared = Math.max(req.size, Number(req.headers.get("content-length") ?? -1) || -1);
  return declared >= 0 ? declared : undefined;
}

function isoTime(ms: number): string | undefined {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** Masks JWT-shaped strings (a token pasted in a path, a detail quoting one). */
function maskTokens(text: string): string {
  return text.includes("eyJ") ? text.replace(JWT_LIKE, "[redacted]") : text;
}

/**
 * The client's country when the pipeline looked it up. `Decision` does not carry it yet; read
 * it structurally so the line gains it as soon as the pipeline adds `country`.
 */
function countryOf(decision: Decision): string | undefined {
  const country = (decision as Decision & { readonly country?: unknown }).country;
  return typeof country === "string" && country !== "" ? country : undefined;
}
