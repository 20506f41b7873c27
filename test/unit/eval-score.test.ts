import { describe, expect, it } from "vitest";
import type { LabelRecord } from "../../bench/eval/model.js";
import {
  type DecisionRecord,
  EvalJoinError,
  formatSummary,
  formatTables,
  GRACE_REQUESTS,
  pct,
  reachesUpstream,
  scoreDecisions,
  totals,
} from "../../bench/eval/score.js";

const base = { time: "2026-11-09T10:00:00.000Z", score: 0, reasons: [], route: "api-read" };
const dec = (
  id: string,
  decision: DecisionRecord["decision"],
  extra: Partial<DecisionRecord> = {},
): DecisionRecord => ({
  ...base,
  request_id: id,
  decision,
  ...extra,
});
const lab = (id: string, label: "legit" | "attack", group: string, actor: string): LabelRecord => ({
  request_id: id,
  label,
  group,
  actor,
});

describe("eval scorer", () => {
  it("says which outcomes reach the upstream: allow, shadow allow, header challenge", () => {
    expect(reachesUpstream(dec("a", "allow"))).toBe(true);
    expect(reachesUpstream(dec("a", "allow", { shadow_of: "deny" }))).toBe(true);
    expect(reachesUpstream(dec("a", "challenge", { challenge_style: "header" }))).toBe(true);
    expect(reachesUpstream(dec("a", "challenge", { challenge_style: "step_up" }))).toBe(false);
    expect(reachesUpstream(dec("a", "challenge"))).toBe(false);
    expect(reachesUpstream(dec("a", "throttle"))).toBe(false);
    expect(reachesUpstream(dec("a", "deny"))).toBe(false);
  });

  it("does not count each attacker's first 10 requests, per actor, in input order", () => {
    expect(GRACE_REQUESTS).toBe(10);
    const labels: LabelRecord[] = [];
    const decisions: DecisionRecord[] = [];
    // actor A: 14 requests, all allowed -> 4 counted, 4 reached
    // actor B: 12 requests, first 10 denied, the last 2 allowed -> 2 counted, 2 reached
    // actor C: 10 requests, all allowed -> nothing counted
    // actor D: 20 requests, allowed until the 12th, denied after -> 10 counted, 2 reached
    const add = (actor: string, n: number, outcome: (i: number) => DecisionRecord["decision"]) => {
      for (let i = 1; i <= n; i++) {
        const id = `${actor}-${i}`;
        labels.push(lab(id, "attack", "fam", actor));
        decisions.push(
          dec(id, outcome(i), { reasons: [{ code: "velocity.subject", points: 15 }] }),
        );
      }
    };
    add("A", 14, () => "allow");
    add("B", 12, (i) => (i <= 10 ? "deny" : "allow"));
    add("C", 10, () => "allow");
    add("D", 20, (i) => (i <= 12 ? "allow" : "deny"));
    // interleave, as real traffic is: the rule follows each actor's own order
    const order = decisions.map((_, i) => i).sort((a, b) => (a % 7) - (b % 7) || a - b);
    const shuffled = order.map((i) => decisions[i] as DecisionRecord);
    const [g] = scoreDecisions(labels, decisions);
    expect(g).toMatchObject({
      group: "fam",
      actors: 4,
      requests: 56,
      afterGrace: 16,
      reachedAfterGrace: 8,
    });
    expect(g?.reasons.get("velocity.subject")).toBe(56);
    // actor order matters, not the global order; A's 11th..14th are still its last four
    const [h] = scoreDecisions(labels, shuffled);
    expect(h?.afterGrace).toBe(16);
  });

  it("counts legitimate requests challenged, throttled and denied, and shadow ones as served", () => {
    const labels = ["1", "2", "3", "4", "5", "6", "7", "8"].map((id) =>
      lab(id, "legit", "browser", `u${id}`),
    );
    const decisions = [
      dec("1", "allow"),
      dec("2", "allow"),
      dec("3", "challenge", { challenge_style: "step_up" }),
      dec("4", "challenge", { challenge_style: "header" }),
      dec("5", "throttle"),
      dec("6", "deny"),
      dec("7", "allow", { shadow_of: "deny" }),
      dec("8", "allow"),
    ];
    const groups = scoreDecisions(labels, decisions);
    expect(groups[0]).toMatchObject({ requests: 8, challenged: 2, throttled: 1, denied: 1 });
    const t = totals(groups);
    expect(t).toMatchObject({
      legitRequests: 8,
      legitChallenged: 2,
      legitThrottled: 1,
      legitDenied: 1,
    });
    expect(pct(t.legitChallenged + t.legitThrottled + t.legitDenied, t.legitRequests)).toBe(
      "50.0%",
    );
    expect(formatTables(groups)).toContain("| browser | 8 | 8 | 25.0% | 12.5% | 12.5% | 50.0% |");
  });

  it("refuses decisions and labels that do not line up", () => {
    const labels = [lab("1", "legit", "browser", "u"), lab("2", "legit", "browser", "u")];
    expect(() => scoreDecisions(labels, [dec("1", "allow")])).toThrow(EvalJoinError);
    expect(() => scoreDecisions(labels, [dec("1", "allow"), dec("3", "allow")])).toThrow(
      /no label/,
    );
    expect(() => scoreDecisions(labels, [dec("1", "allow"), dec("1", "allow")])).toThrow(
      /two decisions/,
    );
  });

  it("prints a dash, not a division by zero, for a family with no counted requests", () => {
    const groups = scoreDecisions([lab("1", "attack", "tiny", "x")], [dec("1", "allow")]);
    expect(formatTables(groups)).toContain("| tiny | 1 | 1 | 0 | - |");
  });

  it("reports people's friction per person-week and machine clients as their own rows", () => {
    const labels: LabelRecord[] = [];
    const decisions: DecisionRecord[] = [];
    const add = (
      label: "legit" | "attack",
      group: string,
      actor: string,
      d: DecisionRecord["decision"],
    ) => {
      const id = String(labels.length + 1);
      labels.push(lab(id, label, group, actor));
      decisions.push(dec(id, d));
    };
    for (let i = 0; i < 6; i++) add("legit", "browser", "alice", i === 0 ? "challenge" : "allow");
    for (let i = 0; i < 4; i++) add("legit", "browser", "bob", i < 2 ? "challenge" : "allow");
    for (let i = 0; i < 4; i++) add("legit", "batch", "job", i === 0 ? "deny" : "allow");
    for (let i = 0; i < 12; i++) add("attack", "a", "x", "allow");
    for (let i = 0; i < 12; i++) add("attack", "b", "y", i < 11 ? "deny" : "allow");
    const text = formatSummary(scoreDecisions(labels, decisions), {
      people: 2,
      days: 7,
      stepUps: 3,
      machinePopulations: ["batch"],
      dropped: new Map([["batch", 4]]),
    });
    // 3 challenges over 2 person-weeks
    expect(text).toContain(
      "| people | 10 | 30.0% | 0.0% | 0.0% | **30.0%** | 0 (0.0%) | 1.50 challenges per person-week",
    );
    expect(text).toContain("| machine clients | 4 | 0.0% | 0.0% | 25.0% | **25.0%** | 4 (50.0%) |");
    expect(text).toContain("| - batch | 4 |");
    // family a: 2 of 2 after the first 10 reached; family b: 1 of 2; averaged per family
    expect(text).toContain("average over the 2 families (not weighted by requests): **75.0%**");
  });
});
