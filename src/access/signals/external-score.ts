import type { PolicyDocument } from "../../config/policy-schema.js";
import { parseCidr } from "../../geo/ip-address.js";
import { createIpList, type IpList } from "../../geo/ip-list.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import type { ExternalObservation, Signal, SignalFinding } from "./signal.js";

type Sources = PolicyDocument["signals"]["external_scores"]["sources"];
type Source = Sources[number];
type Mapping = { readonly points: number; readonly reason?: string | undefined };

/** The longest header or metadata value read; anything longer is malformed. */
const MAX_VALUE = 1024;

/**
 * Scores and labels set by tools in front of riskgate: a CDN's bot score header, a WAF's label
 * header, Envoy dynamic metadata from another filter. A header counts only when the request came
 * through the trusted proxy hops (RISKGATE_TRUSTED_HOPS) and, when the source names
 * `trusted_proxies`, from an edge proxy in them: a client could send the header itself, so
 * anything else is ignored (and counted). Metadata is set by Envoy, which a client cannot reach.
 * Each source's outcome goes to the decision's telemetry (metrics and a span per source).
 */
export const externalScores: Signal = {
  name: "external.scores",
  enabled: (ctx) => {
    const cfg = ctx.policy.doc.signals.external_scores;
    return cfg.enabled && cfg.sources.length > 0;
  },
  evaluate(ctx) {
    return readSources(ctx.policy.doc.signals.external_scores.sources, ctx.req);
  },
};

/** Every source's reasons and outcome for one request. */
export function readSources(sources: Sources, req: AccessRequest): SignalFinding {
  const reasons: Reason[] = [];
  const observations: ExternalObservation[] = [];
  for (const source of sources) {
    const outcome = readSource(source, req, reasons);
    observations.push({ source: source.name, outcome });
  }
  return { reasons, observations };
}

function readSource(
  source: Source,
  req: AccessRequest,
  out: Reason[],
): ExternalObservation["outcome"] {
  let raw: unknown;
  if (source.header !== undefined) {
    raw = req.headers.get(source.header);
    if (raw === undefined || raw === "") return "absent";
    if (!trusted(source, req)) return "untrusted";
  } else if (source.metadata !== undefined) {
    raw = atPath(req.metadata[source.metadata.namespace], source.metadata.path);
    if (raw === undefined || raw === null || raw === "") return "absent";
  }
  if (source.number !== undefined) {
    const value = numberOf(raw);
    if (value === undefined || value < source.number.min || value > source.number.max) {
      return "malformed";
    }
    const band = source.number.bands.find((b) => value >= b.min && value <= b.max);
    if (band === undefined) return "unmapped";
    out.push(reasonOf(source, band, String(value)));
    return "scored";
  }
  const labels = labelsOf(raw);
  if (labels === undefined) return "malformed";
  let scored = false;
  for (const label of new Set(labels)) {
    const mapping = source.labels?.[label];
    if (mapping === undefined) continue;
    out.push(reasonOf(source, mapping, label));
    scored = true;
  }
  return scored ? "scored" : "unmapped";
}

function reasonOf(source: Source, mapping: Mapping, value: string): Reason {
  return {
    code: `external.${mapping.reason ?? source.name}`,
    points: mapping.points,
    detail: `${source.name}=${value}`,
  };
}

/** The edge proxy lists, built once per policy (its sources are frozen with it). */
const proxyLists = new WeakMap<readonly string[], IpList>();

function trusted(source: Source, req: AccessRequest): boolean {
  const edge = req.edgeProxy;
  if (edge === undefined || edge === "") return false;
  const cidrs = source.trusted_proxies;
  if (cidrs === undefined) return true;
  let list = proxyLists.get(cidrs);
  if (list === undefined) {
    // the schema checked every entry parses
    const ranges = cidrs.map(parseCidr).filter((r) => typeof r !== "string");
    list = createIpList(ranges, `external_scores.${source.name}.trusted_proxies`);
    proxyLists.set(cidrs, list);
  }
  return list.has(edge);
}

/** A number, or a string holding only a decimal number; undefined for anything else. */
function numberOf(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw !== "string" || raw.length > 32) return undefined;
  const text = raw.trim();
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : undefined;
}

/** Comma-separated labels (a string) or a list of strings, lower-cased; undefined when neither. */
function labelsOf(raw: unknown): string[] | undefined {
  if (typeof raw === "string") {
    if (raw.length > MAX_VALUE) return undefined;
    return raw
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== "");
  }
  if (Array.isArray(raw) && raw.length <= 64 && raw.every((x) => typeof x === "string")) {
    return raw.map((s) => (s as string).trim().toLowerCase());
  }
  return undefined;
}

/** The value at a dot path inside a metadata namespace's object. */
function atPath(root: unknown, path: string): unknown {
  let node = root;
  for (const key of path.split(".")) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    if (!Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
