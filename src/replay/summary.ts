import type { VerdictKind } from "../access/verdict.js";
import type { DecisionRecord } from "./decision-record.js";

export const KINDS: readonly VerdictKind[] = ["allow", "challenge", "throttle", "deny"];

type Row = Record<VerdictKind, number>;

/** Counts of replayed decisions by outcome, route, tier and reason code. */
export interface Tally {
  add(record: DecisionRecord): void;
  readonly total: number;
  readonly first: string | undefined;
  readonly last: string | undefined;
  readonly byDecision: Readonly<Row>;
  readonly byRoute: ReadonlyMap<string, Row>;
  readonly byTier: ReadonlyMap<string, Row>;
  /** Reason code -> decisions it appeared in, by outcome. */
  readonly byReason: ReadonlyMap<string, Row>;
  /** Decisions that shadow mode relaxed to allow, by the outcome enforcing would have given. */
  readonly shadowed: Readonly<Row>;
}

const emptyRow = (): Row => ({ allow: 0, challenge: 0, throttle: 0, deny: 0 });

export function createTally(): Tally {
  const byDecision = emptyRow();
  const shadowed = emptyRow();
  const byRoute = new Map<string, Row>();
  const byTier = new Map<string, Row>();
  const byReason = new Map<string, Row>();
  let total = 0;
  let first: string | undefined;
  let last: string | undefined;
  const bump = (map: Map<string, Row>, key: string, kind: VerdictKind) => {
    let row = map.get(key);
    if (row === undefined) {
      row = emptyRow();
      map.set(key, row);
    }
    row[kind]++;
  };
  return {
    add(r) {
      total++;
      first ??= r.time;
      last = r.time;
      byDecision[r.decision]++;
      if (r.shadow_of !== undefined) shadowed[r.shadow_of]++;
      bump(byRoute, r.route || "(none)", r.decision);
      bump(byTier, r.tier ?? "(none)", r.decision);
      const seen = new Set<string>();
      for (const reason of r.reasons) {
        if (seen.has(reason.code)) continue;
        seen.add(reason.code);
        bump(byReason, reason.code, r.decision);
      }
    },
    get total() {
      return total;
    },
    get first() {
      return first;
    },
    get last() {
      return last;
    },
    byDecision,
    byRoute,
    byTier,
    byReason,
    shadowed,
  };
}

/** The summary tables as plain text (one screen for a typical policy). */
export function renderTally(tally: Tally): string {
  const out: string[] = [];
  const pct = (n: number) =>
    tally.total === 0 ? "0.0%" : `${((100 * n) / tally.total).toFixed(1)}%`;
  out.push(`decisions: ${tally.total} from ${tally.first ?? "-"} to ${tally.last ?? "-"}`);
  out.push(
    KINDS.map((k) => `${k} ${tally.byDecision[k]} (${pct(tally.byDecision[k])})`).join("  "),
  );
  const relaxed = KINDS.filter((k) => tally.shadowed[k] > 0);
  if (relaxed.length > 0) {
    out.push(`shadow mode allowed: ${relaxed.map((k) => `${tally.shadowed[k]} ${k}`).join(", ")}`);
  }
  for (const [title, map] of [
    ["route", tally.byRoute],
    ["tier", tally.byTier],
    ["reason code", tally.byReason],
  ] as const) {
    out.push("", table(title, map));
  }
  return `${out.join("\n")}\n`;
}

function table(title: string, map: ReadonlyMap<string, Row>): string {
  const rows = [...map.entries()].sort((a, b) => sum(b[1]) - sum(a[1]) || a[0].localeCompare(b[0]));
  const head = [title, ...KINDS, "total"];
  const body = rows.map(([key, row]) => [
    key,
    ...KINDS.map((k) => String(row[k])),
    String(sum(row)),
  ]);
  return formatTable(head, body);
}

function sum(row: Row): number {
  return row.allow + row.challenge + row.throttle + row.deny;
}

/** Left-aligned first column, right-aligned numbers. */
export function formatTable(head: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(head), ...body.map(line)].join("\n");
}
