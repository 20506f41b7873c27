import { pino } from "pino";
import { createIdentifier, type Identifier } from "../access/identity.js";
import { createFileKeySource, type KeySource, keySourceOfPolicy } from "../access/key-source.js";
import {
  createPipeline,
  type Decision,
  type DecisionTrace,
  fixedDecision,
  type Pipeline,
} from "../access/pipeline.js";
import type { Policy } from "../access/policy.js";
import { buildPolicySnapshot, type PolicySnapshot } from "../access/policy-snapshot.js";
import { type AccessRequest, emptyRequest } from "../access/request.js";
import { RiskgateError } from "../errors.js";
import { type GeoReader, openEmbeddedGeoReader } from "../geo/geo-reader.js";
import { createListRegistry, type ListRegistry } from "../geo/list-registry.js";
import { createMemoryStore } from "../state/memory-store.js";
import { MalformedCheckRequest, toAccessRequest } from "../transport/check-request.js";
import { type AuditReplay, createAuditReader } from "./audit-input.js";
import { CheckJsonError, createCheckJsonReader } from "./check-json.js";
import { type DecisionRecord, toDecisionRecord } from "./decision-record.js";

export type { DecisionRecord } from "./decision-record.js";

export interface ReplayOptions {
  readonly policy: Policy;
  /**
   * Where token keys come from: a key source, or a JWKS file path that replaces the policy's
   * `identity.jwks`. Default: the policy's own `identity.jwks` (a file, or a URI fetched once).
   */
  readonly keys?: KeySource | string;
  /** Geolocation; the embedded DB-IP database is opened when absent (pass one to share it). */
  /** Geolocation; absent: the embedded databases; null: none (RISKGATE_GEO=off). */
  readonly geo?: GeoReader | null;
  /** Trusted proxies in front of Envoy, as RISKGATE_TRUSTED_HOPS (default 0). */
  readonly trustedHops?: number;
  /**
   * How far back in time (ms) a line may be from the newest line read so far and still be
   * decided in time order. Lines are held back this long and released sorted by time (ties in
   * input order); a line older than one already decided is an error naming it. Default 0:
   * any step back in time is an error.
   */
  readonly reorderWindowMs?: number;
  /** Observes the stages of each decision (explain). */
  readonly trace?: (line: number, req: AccessRequest) => DecisionTrace | undefined;
}

/** A line the replay could not read; `line` is 1-based. */
export class ReplayInputError extends RiskgateError {
  readonly line: number;
  constructor(line: number, problem: string, options?: ErrorOptions) {
    super("RISKGATE_REPLAY_INPUT_INVALID", `line ${line}: ${problem}`, { line }, options);
    this.line = line;
  }
}

/** One decision of a replay: the request as the pipeline saw it and what it decided. */
export interface ReplayedDecision {
  readonly line: number;
  readonly req: AccessRequest;
  readonly decision: Decision;
  readonly record: DecisionRecord;
}

/** A line read and normalised, waiting for its turn in time order. */
interface Pending {
  readonly line: number;
  readonly time: number;
  readonly req: AccessRequest;
  readonly audit?: AuditReplay | undefined;
  /** Set when the line is not a CheckRequest the transport would decode (request.malformed). */
  readonly malformed?: boolean;
}

/**
 * Replays recorded requests through the real pipeline at their recorded time: identity (exp,
 * nbf and iat judged then), license, every signal, scoring and the verdict, with a fresh
 * embedded memory store and the embedded geo database, so the same input and policy always
 * give the same decisions. Input lines are Envoy CheckRequests in proto3 JSON, or riskgate's
 * own audit lines (told apart per line); one DecisionRecord is yielded per line.
 */
export async function* replay(
  options: ReplayOptions,
  lines: AsyncIterable<string>,
): AsyncGenerator<DecisionRecord> {
  for await (const d of replayDecisions(options, lines)) yield d.record;
}

/** {@link replay}, yielding each decision with the request it was made for. */
export async function* replayDecisions(
  options: ReplayOptions,
  lines: AsyncIterable<string>,
): AsyncGenerator<ReplayedDecision> {
  const engine = await createReplayEngine(options);
  const readCheck = createCheckJsonReader();
  const readAudit = createAuditReader(options.policy);
  const trustedHops = options.trustedHops ?? 0;
  const window = options.reorderWindowMs ?? 0;
  // held lines, sorted by (time, line); released once the newest time is `window` past them
  const held: Pending[] = [];
  let newest = Number.NEGATIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  let lastLine = 0;
  let n = 0;

  const decide = async (p: Pending): Promise<ReplayedDecision> => {
    if (p.time < last) {
      throw new ReplayInputError(
        p.line,
        `time ${new Date(p.time).toISOString()} is before line ${lastLine}'s ${new Date(last).toISOString()}, already decided (lines must be in time order${window > 0 ? ` within the reorder window of ${window} ms` : "; see --reorder-window"})`,
      );
    }
    last = p.time;
    lastLine = p.line;
    const decision = p.malformed
      ? engine.malformed(p.req)
      : await engine.evaluate(p.req, p.audit, options.trace?.(p.line, p.req));
    return { line: p.line, req: p.req, decision, record: toDecisionRecord(p.req, decision) };
  };

  try {
    for await (const text of lines) {
      n++;
      if (text.trim() === "") continue;
      const pending = readLine(n, text, readCheck, readAudit, trustedHops);
      if (pending === undefined) continue;
      newest = Math.max(newest, pending.time);
      let at = held.length;
      while (at > 0 && (held[at - 1] as Pending).time > pending.time) at--;
      held.splice(at, 0, pending);
      while (held.length > 0 && (held[0] as Pending).time <= newest - window) {
        yield await decide(held.shift() as Pending);
      }
    }
    while (held.length > 0) yield await decide(held.shift() as Pending);
  } finally {
    await engine.close();
  }
}

function readLine(
  n: number,
  text: string,
  readCheck: ReturnType<typeof createCheckJsonReader>,
  readAudit: ReturnType<typeof createAuditReader>,
  trustedHops: number,
): Pending | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReplayInputError(n, `not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ReplayInputError(n, "expected a JSON object (a CheckRequest or an audit line)");
  }
  const record = json as Record<string, unknown>;
  // riskgate's operational log shares stdout with the audit log: a captured stdout has both
  if (record.service === "riskgate" && record.log === undefined) return undefined;
  if (record.log === "audit") {
    try {
      const audit = readAudit(record);
      return { line: n, time: audit.req.receivedAt, req: audit.req, audit };
    } catch (err) {
      throw new ReplayInputError(n, (err as Error).message, { cause: err });
    }
  }
  let parsed: ReturnType<typeof readCheck>;
  try {
    parsed = readCheck(json);
  } catch (err) {
    if (err instanceof CheckJsonError) throw new ReplayInputError(n, err.message, { cause: err });
    throw err;
  }
  if (parsed.time === undefined) {
    throw new ReplayInputError(
      n,
      "attributes.request.time is missing: replay takes each decision's clock from it",
    );
  }
  const http = parsed.message.attributes?.request?.http;
  if (http !== undefined && !http.id && !http.headers?.["x-request-id"]) {
    // the transport would make a random id up; a replay's output must not vary
    http.id = `line-${n}`;
  }
  try {
    return {
      line: n,
      time: parsed.time,
      req: toAccessRequest(parsed.message, { trustedHops, now: parsed.time }),
    };
  } catch (err) {
    if (!(err instanceof MalformedCheckRequest)) throw err;
    // the transport answers such a request request.malformed; so does replay
    return {
      line: n,
      time: parsed.time,
      req: emptyRequest({ id: `line-${n}`, receivedAt: parsed.time }),
      malformed: true,
    };
  }
}

/** The pipeline and its dependencies for one policy: fresh state, the replay clock. */
export interface ReplayEngine {
  evaluate(req: AccessRequest, audit?: AuditReplay, trace?: DecisionTrace): Promise<Decision>;
  malformed(req: AccessRequest): Decision;
  close(): Promise<void>;
}

/** Builds the replay pipeline for a policy (memory store, geo, lists, identity, no budget). */
export async function createReplayEngine(options: ReplayOptions): Promise<ReplayEngine> {
  const { policy } = options;
  const logger = pino({ enabled: false });
  const lists: ListRegistry = createListRegistry({ logger });
  const store = createMemoryStore();
  try {
    const geo = options.geo === undefined ? await openEmbeddedGeoReader() : options.geo;
    const pipeline: Pipeline = createPipeline({
      store,
      // stages read the request's receivedAt (the recorded time); nothing reads this
      clock: () => Number.NaN,
      ...(geo === null ? {} : { geo }),
      timeBudget: false,
      scoringWebhook: false,
    });
    const runtime: PolicySnapshot = await buildPolicySnapshot(policy, {
      lists,
      async identifier(p) {
        const identifier: Identifier = createIdentifier(
          { keys: keySourceFor(p, options.keys) },
          p.doc.identity,
        );
        await identifier.ready();
        return identifier;
      },
    });
    // an audit line's caller was verified when it was logged: its identifier replays it
    const audited = new WeakMap<Identifier, PolicySnapshot>();
    const runtimeFor = (identifier: Identifier): PolicySnapshot => {
      let r = audited.get(identifier);
      if (r === undefined) {
        r = { ...runtime, identifier };
        audited.set(identifier, r);
      }
      return r;
    };
    return {
      evaluate(req, audit, trace) {
        return pipeline.evaluate(
          audit === undefined ? runtime : runtimeFor(audit.identifier),
          req,
          trace,
        );
      },
      malformed(req) {
        return fixedDecision(policy, {
          requestId: req.id,
          score: 0,
          reasons: [{ code: "request.malformed", points: 0 }],
          kind: "deny",
          cause: "malformed",
        });
      },
      async close() {
        runtime.close();
        lists.close();
        await store.close();
      },
    };
  } catch (err) {
    lists.close();
    await store.close();
    throw err;
  }
}

function keySourceFor(policy: Policy, keys: KeySource | string | undefined): KeySource | undefined {
  if (typeof keys === "string") return createFileKeySource({ file: keys });
  if (keys !== undefined) return keys;
  const named = keySourceOfPolicy(policy.doc.identity.jwks);
  if (named !== undefined) return named;
  if (policy.doc.identity.sources.jwt_authn.enabled) return undefined;
  throw new RiskgateError(
    "RISKGATE_JWKS_UNAVAILABLE",
    `${policy.source}: identity.jwks is not set; pass --jwks FILE, or --dev to trust the local dev key`,
  );
}
