import { z } from "zod";
import {
  cidr,
  claimPath,
  externalBand,
  externalMapping,
  externalName,
} from "../../config/policy-fields.js";
import { parseCidr } from "../../geo/ip-address.js";
import { createIpList, type IpList } from "../../geo/ip-list.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import { type ExternalObservation, type Signal, type SignalFinding, section } from "./signal.js";

/**
 * One score or label a tool in front of riskgate sets: read from a request header (believed only
 * from the trusted proxy hops) or from Envoy dynamic metadata (set by another filter), parsed as a
 * number in a range or as labels, and mapped to points and a reason code.
 */
const externalSource = z
  .strictObject({
    name: externalName,
    /** Request header (lower-cased) the tool sets. */
    header: z.string().min(1).toLowerCase().optional(),
    /** Envoy `metadata_context.filter_metadata` namespace and dot path inside it. */
    metadata: z.strictObject({ namespace: z.string().min(1), path: claimPath }).optional(),
    /**
     * The edge proxy (the trusted hop the client connected to) must be in one of these CIDRs for
     * the header to count; unset: any request that came through RISKGATE_TRUSTED_HOPS counts.
     */
    trusted_proxies: z.array(cidr).optional(),
    /** The value is a number in [min, max]; the first band holding it maps it. */
    number: z
      .strictObject({
        min: z.number(),
        max: z.number(),
        bands: z.array(externalBand).min(1),
      })
      .refine((n) => n.min <= n.max, { message: "min must not be above max" })
      .optional(),
    /** The value is one or more comma-separated labels (case-insensitive); each known one maps. */
    labels: z.record(z.string().min(1).toLowerCase(), externalMapping).optional(),
  })
  .refine((s) => (s.header === undefined) !== (s.metadata === undefined), {
    message: "set exactly one of header or metadata",
  })
  .refine((s) => (s.number === undefined) !== (s.labels === undefined), {
    message: "set exactly one of number or labels",
  })
  .refine((s) => s.metadata === undefined || s.trusted_proxies === undefined, {
    message: "trusted_proxies applies to header sources (Envoy sets metadata itself)",
  });

type Source = z.output<typeof externalSource>;
type Sources = readonly Source[];

/** Scores and labels set by tools in front of riskgate (a CDN's bot score, WAF labels). */
const externalSection = section(
  "external_scores",
  z
    .strictObject({
      enabled: z.boolean().default(false),
      sources: z.array(externalSource).default([]),
    })
    .superRefine((e, ctx) => {
      const seen = new Set<string>();
      e.sources.forEach((src, i) => {
        if (seen.has(src.name)) {
          ctx.addIssue({
            code: "custom",
            message: `duplicate source name ${src.name}`,
            path: ["sources", i, "name"],
          });
        }
        seen.add(src.name);
      });
    })
    .prefault({}),
  {
    // each source's name, and the reasons its bands and labels name instead
    *externalNames(cfg) {
      for (const src of cfg.sources) {
        yield src.name;
        for (const m of [...(src.number?.bands ?? []), ...Object.values(src.labels ?? {})]) {
          if (m.reason !== undefined) yield m.reason;
        }
      }
    },
    // a source's header is the front proxy's word to riskgate, not the upstream's
    upstreamHeaders: (cfg) => cfg.sources.flatMap((s) => s.header ?? []),
  },
);

const REASONS = {
  "external.<name>":
    "An external score mapped to points: a source of signals.external_scores (a CDN bot score, WAF labels, Envoy metadata) or the scoring webhook (`external.webhook`); <name> is the source's or the band's `reason`.",
} as const;
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
export const externalScores: Signal<typeof REASONS, typeof externalSection> = {
  name: "external.scores",
  reasons: REASONS,
  policy: externalSection,
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
