import type { VerdictKind } from "../access/verdict.js";
import type { DecisionRecord } from "./decision-record.js";
import { formatTable, KINDS } from "./summary.js";

/** One decision that differs between the two policies. */
export interface Flip {
  readonly request_id: string;
  readonly time: string;
  readonly route: string;
  readonly tier: string;
  readonly from: VerdictKind;
  readonly to: VerdictKind;
  /** Reason codes only the old policy's decision had. */
  readonly gone: readonly string[];
  /** Reason codes only the new policy's decision has. */
  readonly added: readonly string[];
  /** Reason codes both have, with other points. */
  readonly repointed: readonly string[];
  readonly oldScore: number;
  readonly newScore: number;
}

/** Decisions per outcome in one time bucket. */
export type Bucket = Record<VerdictKind, number>;

/** The what-if comparison of two policies over the same input, built one pair at a time. */
export interface Comparison {
  add(oldRecord: DecisionRecord, newRecord: DecisionRecord): void;
  readonly total: number;
  /** Changes counted by transition ("allow->challenge"). */
  readonly transitions: ReadonlyMap<string, number>;
  readonly byRoute: ReadonlyMap<string, ReadonlyMap<string, number>>;
  readonly byTier: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /**
   * Changes by the reason codes that explain them: `+code` new, `-code` gone, `~code` other
   * points; `(threshold)` when the reasons are the same (a threshold or tier moved).
   */
  readonly byReason: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Up to `examples` flips per transition. */
  readonly examples: ReadonlyMap<string, readonly Flip[]>;
  /** Requests the old policy refused (challenge, throttle, deny) that the new one allows. */
  readonly newAllows: number;
  /** Per-minute (or coarser) buckets of each policy's decisions, keyed by bucket start (ms). */
  readonly series: {
    readonly old: ReadonlyMap<number, Bucket>;
    readonly new: ReadonlyMap<number, Bucket>;
  };
  readonly first: string | undefined;
  readonly last: string | undefined;
}

/** A change is a "new allow" when the old policy refused and the new one lets it through. */
export function isNewAllow(from: VerdictKind, to: VerdictKind): boolean {
  return from !== "allow" && to === "allow";
}

/** Adds one to `map[key][transition]`. */
function countInto(map: Map<string, Map<string, number>>, key: string, transition: string): void {
  let row = map.get(key);
  if (row === undefined) {
    row = new Map();
    map.set(key, row);
  }
  row.set(transition, (row.get(transition) ?? 0) + 1);
}

/**
 * Both policies' decisions per time bucket: one bucket per minute; past 1,440 buckets,
 * adjacent ones are merged (bounded memory for a week).
 */
function createSeries() {
  let bucketMs = 60_000;
  const series = { old: new Map<number, Bucket>(), new: new Map<number, Bucket>() };
  const plot = (map: Map<number, Bucket>, time: number, kind: VerdictKind) => {
    const start = Math.floor(time / bucketMs) * bucketMs;
    let b = map.get(start);
    if (b === undefined) {
      b = { allow: 0, challenge: 0, throttle: 0, deny: 0 };
      map.set(start, b);
    }
    b[kind]++;
  };
  const coarsen = () => {
    bucketMs *= 2;
    for (const key of ["old", "new"] as const) {
      const merged = new Map<number, Bucket>();
      for (const [start, b] of series[key]) {
        const s = Math.floor(start / bucketMs) * bucketMs;
        const m = merged.get(s) ?? { allow: 0, challenge: 0, throttle: 0, deny: 0 };
        for (const k of KINDS) m[k] += b[k];
        merged.set(s, m);
      }
      series[key] = merged;
    }
  };
  return {
    series,
    add(time: number, oldKind: VerdictKind, newKind: VerdictKind) {
      plot(series.old, time, oldKind);
      plot(series.new, time, newKind);
      while (series.old.size > 1440 || series.new.size > 1440) coarsen();
    },
  };
}

/** One changed decision with the reason codes that explain it. */
function flipOf(o: DecisionRecord, n: DecisionRecord): Flip {
  const oldPoints = pointsByCode(o);
  const newPoints = pointsByCode(n);
  return {
    request_id: n.request_id,
    time: n.time,
    route: n.route,
    tier: n.tier ?? o.tier ?? "(none)",
    from: o.decision,
    to: n.decision,
    gone: [...oldPoints.keys()].filter((c) => !newPoints.has(c)),
    added: [...newPoints.keys()].filter((c) => !oldPoints.has(c)),
    repointed: [...newPoints.keys()].filter(
      (c) => oldPoints.has(c) && oldPoints.get(c) !== newPoints.get(c),
    ),
    oldScore: o.score,
    newScore: n.score,
  };
}

/**
 * Counts what changes between the old and the new policy's decisions. Time series keep one
 * bucket per minute; past 1,440 buckets, adjacent ones are merged (bounded memory for a week).
 */
export function createComparison(options: { examples?: number } = {}): Comparison {
  const keep = options.examples ?? 3;
  const transitions = new Map<string, number>();
  const byRoute = new Map<string, Map<string, number>>();
  const byTier = new Map<string, Map<string, number>>();
  const byReason = new Map<string, Map<string, number>>();
  const examples = new Map<string, Flip[]>();
  const plotted = createSeries();
  let total = 0;
  let newAllows = 0;
  let first: string | undefined;
  let last: string | undefined;

  return {
    add(o, n) {
      total++;
      first ??= n.time;
      last = n.time;
      plotted.add(Date.parse(n.time), o.decision, n.decision);
      if (o.decision === n.decision) return;
      const transition = `${o.decision}->${n.decision}`;
      transitions.set(transition, (transitions.get(transition) ?? 0) + 1);
      if (isNewAllow(o.decision, n.decision)) newAllows++;
      const flip = flipOf(o, n);
      countInto(byRoute, n.route || "(none)", transition);
      countInto(byTier, flip.tier, transition);
      const changed = describeChange(flip);
      for (const c of changed.length === 0 ? ["(threshold)"] : changed) {
        countInto(byReason, c, transition);
      }
      let list = examples.get(transition);
      if (list === undefined) {
        list = [];
        examples.set(transition, list);
      }
      if (list.length < keep) list.push(flip);
    },
    get total() {
      return total;
    },
    get newAllows() {
      return newAllows;
    },
    get first() {
      return first;
    },
    get last() {
      return last;
    },
    get series() {
      return plotted.series;
    },
    transitions,
    byRoute,
    byTier,
    byReason,
    examples,
  };
}

/** The comparison as plain text: transitions, then counts by route, tier and reason, examples. */
export function renderComparison(c: Comparison): string {
  const changed = [...c.transitions.values()].reduce((a, b) => a + b, 0);
  const out: string[] = [
    `what-if: ${c.total} decisions from ${c.first ?? "-"} to ${c.last ?? "-"}; ${changed} change${changed === 1 ? "" : "s"}, ${c.newAllows} new allow${c.newAllows === 1 ? "" : "s"} of requests the old policy refused`,
  ];
  if (changed === 0) return `${out.join("\n")}\n`;
  const names = [...c.transitions.entries()].sort((a, b) => b[1] - a[1]).map(([t]) => t);
  out.push(
    "",
    formatTable(
      ["change", "count"],
      names.map((t) => [t, String(c.transitions.get(t))]),
    ),
  );
  for (const [title, map] of [
    ["route", c.byRoute],
    ["tier", c.byTier],
    ["reason (+ new, - gone, ~ points)", c.byReason],
  ] as const) {
    const rows = [...map.entries()]
      .map(([key, row]) => [key, ...names.map((t) => String(row.get(t) ?? 0))])
      .sort((a, b) => rowSum(b) - rowSum(a) || String(a[0]).localeCompare(String(b[0])));
    out.push("", formatTable([title, ...names], rows));
  }
  out.push("", "examples:");
  for (const t of names) {
    for (const f of c.examples.get(t) ?? []) {
      const why = describeChange(f).join(" ");
      out.push(
        `  ${t}  ${f.request_id}  ${f.time}  route=${f.route} tier=${f.tier} score ${f.oldScore}->${f.newScore}${why ? `  ${why}` : ""}`,
      );
    }
  }
  return `${out.join("\n")}\n`;
}

/** `+code` new, `-code` gone, `~code` other points. */
export function describeChange(f: Pick<Flip, "gone" | "added" | "repointed">): string[] {
  return [
    ...f.gone.map((c) => `-${c}`),
    ...f.added.map((c) => `+${c}`),
    ...f.repointed.map((c) => `~${c}`),
  ];
}

function pointsByCode(r: DecisionRecord): Map<string, number> {
  const out = new Map<string, number>();
  for (const reason of r.reasons) out.set(reason.code, (out.get(reason.code) ?? 0) + reason.points);
  return out;
}

function rowSum(row: readonly string[]): number {
  return row.slice(1).reduce((a, b) => a + Number(b), 0);
}
