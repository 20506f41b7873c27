import type { LabelRecord } from "./model.js";

/** One line of `riskgate replay` output (the replay/eval contract). */
export interface DecisionRecord {
  readonly request_id: string;
  readonly time: string;
  readonly decision: "allow" | "challenge" | "throttle" | "deny";
  readonly shadow_of?: string;
  readonly challenge_style?: "step_up" | "header" | "interactive";
  readonly score: number;
  readonly reasons: readonly { readonly code: string; readonly points: number }[];
  readonly route: string;
  readonly tier?: string;
}

/** Requests of an actor that do not count against the engine: it needs some evidence first. */
export const GRACE_REQUESTS = 10;

/**
 * Whether Envoy forwards the request to the upstream: an allow (also a shadow-mode allow, whatever
 * it would have been) and a `header`-style challenge (Envoy gets OK plus a challenge header).
 * A step-up challenge (401), a throttle (429) and a deny (401/403/503) do not reach it.
 */
export function reachesUpstream(d: DecisionRecord): boolean {
  if (d.shadow_of !== undefined) return true;
  if (d.decision === "allow") return true;
  return d.decision === "challenge" && d.challenge_style === "header";
}

export interface GroupScore {
  readonly label: "legit" | "attack";
  readonly group: string;
  readonly actors: number;
  readonly requests: number;
  /** Attack: requests after each actor's first GRACE_REQUESTS. */
  readonly afterGrace: number;
  /** Attack: of those, how many reached the upstream. */
  readonly reachedAfterGrace: number;
  readonly challenged: number;
  readonly throttled: number;
  readonly denied: number;
  /** Reason code -> requests it fired on. */
  readonly reasons: ReadonlyMap<string, number>;
}

interface MutableGroup {
  label: "legit" | "attack";
  group: string;
  actors: Map<string, number>;
  requests: number;
  afterGrace: number;
  reachedAfterGrace: number;
  challenged: number;
  throttled: number;
  denied: number;
  reasons: Map<string, number>;
}

/** Raised when decisions and labels do not line up (a missing or unknown request id). */
export class EvalJoinError extends Error {
  override readonly name = "EvalJoinError";
}

/**
 * Joins decisions (in input order) with their labels and counts per population / family.
 * Every label must get exactly one decision and every decision must have a label.
 */
export function scoreDecisions(
  labels: Iterable<LabelRecord>,
  decisions: Iterable<DecisionRecord>,
): GroupScore[] {
  const byId = new Map<string, LabelRecord>();
  for (const l of labels) byId.set(l.request_id, l);
  const groups = new Map<string, MutableGroup>();
  const seen = new Set<string>();
  for (const d of decisions) {
    const l = byId.get(d.request_id);
    if (!l) throw new EvalJoinError(`decision for ${d.request_id} has no label`);
    if (seen.has(d.request_id)) throw new EvalJoinError(`two decisions for ${d.request_id}`);
    seen.add(d.request_id);
    const key = `${l.label}:${l.group}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        label: l.label,
        group: l.group,
        actors: new Map(),
        requests: 0,
        afterGrace: 0,
        reachedAfterGrace: 0,
        challenged: 0,
        throttled: 0,
        denied: 0,
        reasons: new Map(),
      };
      groups.set(key, g);
    }
    const nth = (g.actors.get(l.actor) ?? 0) + 1;
    g.actors.set(l.actor, nth);
    g.requests++;
    if (nth > GRACE_REQUESTS) {
      g.afterGrace++;
      if (reachesUpstream(d)) g.reachedAfterGrace++;
    }
    if (d.shadow_of === undefined) {
      if (d.decision === "challenge") g.challenged++;
      else if (d.decision === "throttle") g.throttled++;
      else if (d.decision === "deny") g.denied++;
    }
    for (const r of new Set(d.reasons.map((x) => x.code)))
      g.reasons.set(r, (g.reasons.get(r) ?? 0) + 1);
  }
  if (seen.size !== byId.size) {
    const missing = [...byId.keys()].find((id) => !seen.has(id));
    throw new EvalJoinError(
      `${byId.size - seen.size} labelled requests got no decision (first: ${missing})`,
    );
  }
  return [...groups.values()]
    .map((g) => ({ ...g, actors: g.actors.size }))
    .sort((a, b) =>
      a.label === b.label ? a.group.localeCompare(b.group) : a.label === "legit" ? -1 : 1,
    );
}

export interface Totals {
  readonly attackAfterGrace: number;
  readonly attackReachedAfterGrace: number;
  readonly legitRequests: number;
  readonly legitChallenged: number;
  readonly legitThrottled: number;
  readonly legitDenied: number;
}

export function totals(groups: readonly GroupScore[]): Totals {
  const sum = (label: "legit" | "attack", f: (g: GroupScore) => number) =>
    groups.filter((g) => g.label === label).reduce((a, g) => a + f(g), 0);
  return {
    attackAfterGrace: sum("attack", (g) => g.afterGrace),
    attackReachedAfterGrace: sum("attack", (g) => g.reachedAfterGrace),
    legitRequests: sum("legit", (g) => g.requests),
    legitChallenged: sum("legit", (g) => g.challenged),
    legitThrottled: sum("legit", (g) => g.throttled),
    legitDenied: sum("legit", (g) => g.denied),
  };
}

/** A share as a percentage with one decimal ("-" when there is nothing to divide). */
export function pct(part: number, whole: number): string {
  if (whole === 0) return "-";
  return `${((100 * part) / whole).toFixed(1)}%`;
}

function topReasons(g: GroupScore, k = 4): string {
  const list = [...g.reasons].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, k);
  if (list.length === 0) return "-";
  return list.map(([code, count]) => `\`${code}\` ${pct(count, g.requests)}`).join(", ");
}

/** The per-family / per-population tables in Markdown. */
export function formatTables(groups: readonly GroupScore[]): string {
  const lines: string[] = [];
  lines.push(
    "| attack family | actors | requests | after first 10 | reached upstream after first 10 | reason codes (share of requests) |",
    "|---|---:|---:|---:|---:|---|",
  );
  for (const g of groups.filter((x) => x.label === "attack")) {
    lines.push(
      `| ${g.group} | ${g.actors} | ${g.requests} | ${g.afterGrace} | ${pct(g.reachedAfterGrace, g.afterGrace)} | ${topReasons(g)} |`,
    );
  }
  const t = totals(groups);
  lines.push(
    `| **all attacks** | | | ${t.attackAfterGrace} | **${pct(t.attackReachedAfterGrace, t.attackAfterGrace)}** | |`,
  );
  lines.push("");
  lines.push(
    "| legitimate population | actors | requests | challenged | throttled | denied | refused (all three) | reason codes (share of requests) |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
  );
  for (const g of groups.filter((x) => x.label === "legit")) {
    lines.push(
      `| ${g.group} | ${g.actors} | ${g.requests} | ${pct(g.challenged, g.requests)} | ${pct(g.throttled, g.requests)} | ${pct(g.denied, g.requests)} | ${pct(g.challenged + g.throttled + g.denied, g.requests)} | ${topReasons(g)} |`,
    );
  }
  const refused = t.legitChallenged + t.legitThrottled + t.legitDenied;
  lines.push(
    `| **all legitimate** | | ${t.legitRequests} | ${pct(t.legitChallenged, t.legitRequests)} | ${pct(t.legitThrottled, t.legitRequests)} | ${pct(t.legitDenied, t.legitRequests)} | **${pct(refused, t.legitRequests)}** | |`,
  );
  return lines.join("\n");
}

/** Friction and refusals of people and machine clients, beside the per-population table. */
export interface Summary {
  readonly people: number;
  readonly days: number;
  readonly stepUps: number;
  readonly machinePopulations: readonly string[];
  /** Planned requests not sent because of a reaction to a refusal, per population. */
  readonly dropped: ReadonlyMap<string, number>;
}

/** The headline rows: refused shares of people and machine clients, challenges per person-week. */
export function formatSummary(groups: readonly GroupScore[], s: Summary): string {
  const legit = groups.filter((g) => g.label === "legit");
  const row = (name: string, gs: readonly GroupScore[], extra: string) => {
    const req = gs.reduce((a, g) => a + g.requests, 0);
    const ch = gs.reduce((a, g) => a + g.challenged, 0);
    const th = gs.reduce((a, g) => a + g.throttled, 0);
    const de = gs.reduce((a, g) => a + g.denied, 0);
    const drop = gs.reduce((a, g) => a + (s.dropped.get(g.group) ?? 0), 0);
    return `| ${name} | ${req} | ${pct(ch, req)} | ${pct(th, req)} | ${pct(de, req)} | **${pct(ch + th + de, req)}** | ${drop} (${pct(drop, req + drop)}) | ${extra} |`;
  };
  const machines = legit.filter((g) => s.machinePopulations.includes(g.group));
  const people = legit.filter((g) => !s.machinePopulations.includes(g.group));
  const challenges = people.reduce((a, g) => a + g.challenged, 0);
  const personWeeks = (s.people * s.days) / 7;
  const perWeek = personWeeks === 0 ? "-" : (challenges / personWeeks).toFixed(2);
  const attacks = groups.filter((g) => g.label === "attack" && g.afterGrace > 0);
  const avg =
    attacks.length === 0
      ? "-"
      : `${((100 * attacks.reduce((a, g) => a + g.reachedAfterGrace / g.afterGrace, 0)) / attacks.length).toFixed(1)}%`;
  return [
    "| legitimate | requests | challenged | throttled | denied | refused | planned but not sent after a refusal | friction |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    row(
      "people",
      people,
      `${perWeek} challenges per person-week (${s.people} people), ${s.stepUps} step-ups answered`,
    ),
    row("machine clients", machines, ""),
    ...machines.map((g) => row(`- ${g.group}`, [g], "")),
    row("all legitimate", legit, ""),
    "",
    `Attack requests reaching the upstream after each actor's first ${GRACE_REQUESTS}, average over the ${attacks.length} families (not weighted by requests): **${avg}**.`,
  ].join("\n");
}
