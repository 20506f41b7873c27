/**
 * The outside method's figures and its BENCHMARKS.md section: per round the ratio of each
 * server to that round's no-op, then the median of the rounds, each next to its target and to
 * the figures measured before.
 */
import { cpus, totalmem } from "node:os";
import type { H2loadRun } from "./harness.js";

export interface RunSample {
  readonly key: "noop" | "riskgate" | "full" | "noop2" | "full2";
  readonly label: string;
  readonly round: number;
  readonly run: H2loadRun;
  /** Server CPU (user + system, all its processes) over the run, seconds. */
  readonly cpuSeconds: number;
  readonly scripts: number;
  readonly otherCommands: number;
  /** Redis's own time in the server's scripts over the run (commandstats usec), seconds. */
  readonly redisSeconds: number;
  readonly decisions?: Record<string, number>;
  readonly budget?: number;
  /** Decisions the failure mode made because a store call failed or timed out. */
  readonly storeFailed?: number;
  readonly shed?: number;
  /** 1-minute load average before and after the run. */
  readonly load: [number, number];
}

export interface SequentialSample {
  readonly key: RunSample["key"];
  readonly round: number;
  readonly p50: number;
  readonly p99: number;
}

/** A MONITOR sample of one server: what its sequential Checks sent Redis. */
export interface MonitoredChecks {
  readonly sent: Record<string, number>;
  readonly inScripts: number;
  readonly checks: number;
}

export interface OutsideInput {
  readonly monitored: Record<string, MonitoredChecks>;
  /** Store failures each server logged (a lower bound; the one sign without metrics). */
  readonly logFailures: Record<string, number>;
  readonly samples: readonly RunSample[];
  readonly sequential: readonly SequentialSample[];
  readonly requestBytes: number;
  readonly options: { seconds: number; rounds: number; clients: number; streams: number };
  readonly blockListSize: number;
  /** Load averages (1, 5, 15 min) before and after the whole method. */
  readonly load: [number[], number[]];
  /** Decisions per CPU-second of `riskgate replay`, when the replay part ran too. */
  readonly replay?: number;
}

/** The headline figures, medians of the rounds. */
export interface OutsideFigures {
  readonly riskgateShare: number;
  readonly fullShare: number;
  readonly cpuRatioRiskgate: number;
  readonly cpuRatioFull: number;
  readonly cpuPerCheck: Record<string, number>;
  /** Redis's time inside the scripts per Check answered, µs. */
  readonly redisPerCheck: Record<string, number>;
  readonly p50: Record<string, number>;
  readonly p99: Record<string, number>;
  readonly p50Diff: number;
  readonly p50DiffFull: number;
  readonly fullGain: number;
  readonly noopGain: number;
  readonly tripsRiskgate: number;
  readonly tripsFull: number;
  readonly budget: {
    full: number;
    full2: number;
    decided: number;
    decided2: number;
    store: number;
    store2: number;
  };
  readonly shed: number | undefined;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? (s[mid] as number)
      : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

function figuresOf(input: OutsideInput): OutsideFigures {
  const { samples, sequential } = input;
  const at = (key: RunSample["key"], round: number) =>
    samples.find((s) => s.key === key && s.round === round) as RunSample;
  const rounds = [...new Set(samples.map((s) => s.round))];
  const cpuUs = (s: RunSample) => (s.cpuSeconds * 1e6) / Math.max(1, s.run.answered);
  const perRound = (f: (round: number) => number) => median(rounds.map(f));
  const share = (key: RunSample["key"]) =>
    perRound((r) => at(key, r).run.rps / at("noop", r).run.rps);
  const cpuRatio = (key: RunSample["key"]) =>
    perRound((r) => cpuUs(at(key, r)) / cpuUs(at("noop", r)));
  // scripts per Check under saturation (commandstats), plus any command sent outside a script
  // per Check in the MONITOR sample (commandstats cannot tell those from a script's own)
  const direct = (key: string) => {
    const m = input.monitored[key];
    if (m === undefined) return 0;
    const other = Object.entries(m.sent).filter(([c]) => c !== "evalsha" && c !== "eval");
    return other.reduce((n, [, v]) => n + v, 0) / Math.max(1, m.checks);
  };
  const trips = (key: RunSample["key"]) =>
    perRound((r) => at(key, r).scripts / Math.max(1, at(key, r).run.answered)) + direct(key);
  const seq = (key: RunSample["key"], q: "p50" | "p99") =>
    median(sequential.filter((s) => s.key === key).map((s) => s[q]));
  const seqDiff = (key: RunSample["key"]) =>
    median(
      [...new Set(sequential.map((s) => s.round))].map(
        (r) =>
          (sequential.find((s) => s.key === key && s.round === r)?.p50 ?? 0) -
          (sequential.find((s) => s.key === "noop" && s.round === r)?.p50 ?? 0),
      ),
    );
  const sum = (key: RunSample["key"], f: (s: RunSample) => number | undefined) =>
    samples.filter((s) => s.key === key).reduce((n, s) => n + (f(s) ?? 0), 0);
  const shedKnown = samples.some((s) => s.shed !== undefined);
  return {
    riskgateShare: share("riskgate"),
    fullShare: share("full"),
    cpuRatioRiskgate: cpuRatio("riskgate"),
    cpuRatioFull: cpuRatio("full"),
    cpuPerCheck: Object.fromEntries(
      (["noop", "riskgate", "full", "noop2", "full2"] as const).map((k) => [
        k,
        median(samples.filter((s) => s.key === k).map(cpuUs)),
      ]),
    ),
    redisPerCheck: Object.fromEntries(
      (["riskgate", "full", "full2"] as const).map((k) => [
        k,
        median(
          samples
            .filter((s) => s.key === k)
            .map((s) => (s.redisSeconds * 1e6) / Math.max(1, s.run.answered)),
        ),
      ]),
    ),
    p50: Object.fromEntries(["noop", "riskgate", "full"].map((k) => [k, seq(k as "noop", "p50")])),
    p99: Object.fromEntries(["noop", "riskgate", "full"].map((k) => [k, seq(k as "noop", "p99")])),
    p50Diff: seqDiff("riskgate"),
    p50DiffFull: seqDiff("full"),
    fullGain: perRound((r) => at("full2", r).run.rps / at("full", r).run.rps),
    noopGain: perRound((r) => at("noop2", r).run.rps / at("noop", r).run.rps),
    tripsRiskgate: trips("riskgate"),
    tripsFull: trips("full"),
    budget: {
      full: sum("full", (s) => s.budget),
      full2: sum("full2", (s) => s.budget),
      decided: sum("full", (s) => Object.values(s.decisions ?? {}).reduce((a, b) => a + b, 0)),
      decided2: sum("full2", (s) => Object.values(s.decisions ?? {}).reduce((a, b) => a + b, 0)),
      store: sum("full", (s) => s.storeFailed),
      store2: sum("full2", (s) => s.storeFailed),
    },
    shed: shedKnown ? sum("full", (s) => s.shed) + sum("full2", (s) => s.shed) : undefined,
  };
}

const x2 = (n: number) => n.toFixed(2);
const us = (n: number) => Math.round(n).toLocaleString("en-US");
const met = (ok: boolean) => (ok ? "met" : "**not met**");

function runRows(input: OutsideInput): string[] {
  return input.samples.map((s) => {
    const noop = input.samples.find((n) => n.key === "noop" && n.round === s.round);
    const cpu = (s.cpuSeconds * 1e6) / Math.max(1, s.run.answered);
    const per = (n: number) => (n / Math.max(1, s.run.answered)).toFixed(2);
    const decisions =
      s.decisions === undefined ? "-" : JSON.stringify(s.decisions).replace(/"/g, "");
    return `| ${s.round + 1} | ${s.label} | ${s.run.rps.toFixed(0)} | ${noop ? x2(s.run.rps / noop.run.rps) : "-"} | ${cpu.toFixed(1)} | ${x2(s.run.p50)} | ${x2(s.run.p99)} | ${s.key.startsWith("noop") ? "-" : `${per(s.scripts)} (${per(s.otherCommands)})`} | ${s.key.startsWith("noop") ? "-" : ((s.redisSeconds * 1e6) / Math.max(1, s.run.answered)).toFixed(0)} | ${decisions} | ${s.budget ?? "-"} / ${s.storeFailed ?? "-"} | ${s.shed ?? "n/a"} | ${s.run.failed} | ${s.load[0].toFixed(1)} → ${s.load[1].toFixed(1)} |`;
  });
}

function monitorLines(input: OutsideInput): string[] {
  const lines = Object.entries(input.monitored).map(([key, m]) => {
    const sent = Object.entries(m.sent)
      .map(([c, n]) => `${c} ${(n / m.checks).toFixed(2)}`)
      .join(", ");
    return `- ${key}: ${m.checks} Checks one at a time sent Redis ${sent || "nothing"} per Check; its scripts ran ${(m.inScripts / m.checks).toFixed(1)} commands per Check inside Redis.`;
  });
  const logged = Object.entries(input.logFailures)
    .filter(([, n]) => n > 0)
    .map(([key, n]) => `${key} ${n}`);
  return [
    "Redis commands by sender (MONITOR, after the timed runs; a round trip is a command a client sends, a script's own commands are not):",
    "",
    ...lines,
    "",
    `Store calls that failed into the failure mode, from the servers' logs (at least): ${logged.length === 0 ? "none" : logged.join(", ")}. "riskgate" runs without metrics, so its time-budget refusals are not counted; "full" counts them in the table above.`,
  ];
}

/** The figures and the "## A Check as a user sees it" section of BENCHMARKS.md. */
export function outsideMarkdown(input: OutsideInput): {
  markdown: string;
  figures: OutsideFigures;
} {
  const f = figuresOf(input);
  const o = input.options;
  const fmtLoad = (l: number[]) => l.map((n) => n.toFixed(1)).join(", ");
  const seqRounds = (key: string, q: "p50" | "p99") =>
    input.sequential
      .filter((s) => s.key === key)
      .map((s) => us(s[q]))
      .join(" / ");
  const budgetText = `${f.budget.full} of ${f.budget.decided} (1 worker), ${f.budget.full2} of ${f.budget.decided2} (2 workers)`;
  const storeText = `${f.budget.store} (1 worker), ${f.budget.store2} (2 workers)`;
  const share = (n: number, of: number) => `${((n / Math.max(1, of)) * 100).toFixed(1)}%`;
  // failure-mode answers skip the rest of the Check: a run with many of them is cheaper than
  // the engine, so its Check/s and CPU per Check flatter riskgate
  const failureShare = `${share(f.budget.full + f.budget.store, f.budget.decided)} (1 worker), ${share(f.budget.full2 + f.budget.store2, f.budget.decided2)} (2 workers); riskgate without metrics logged at least ${input.logFailures.riskgate ?? 0} store failures`;
  const replay = input.replay;
  const lines = [
    "## A Check as a user sees it (outside method)",
    "",
    `Produced by \`npm run bench\` (BENCH_ONLY=outside for this section alone) on ${new Date().toISOString().slice(0, 10)}. Machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average ${fmtLoad(input.load[0])} before and ${fmtLoad(input.load[1])} after (the 2 cores are shared with other engineers' work: read the ratios, which are taken within one round).`,
    "",
    `Method: one ${input.requestBytes}-byte Envoy CheckRequest (\`GET /v1/items?limit=20\`, a browser with a device id, a real ES256 token verified through riskgate's JWKS-file key source and allowed) for every server. riskgate runs policies/production.yaml with only the identity pointed at the bench key and the rate limits, quotas and person ceiling raised past what one bench caller sends (every signal, rule and counter as shipped; bench/production-policy.ts), with Redis. "full" adds a ${input.blockListSize.toLocaleString("en-US")}-CIDR block list, an audit line per decision (stdout to a file) and metrics. h2load -t 1 c${o.clients} m${o.streams}, ${o.seconds} s a run, rounds rotated (no-op, riskgate, full, no-op x2, full x2) x${o.rounds}; figures are the median over rounds of each round's ratio. Server CPU is user + system of the server's processes from /proc over the run, divided by the Checks it answered. Redis round trips are INFO commandstats deltas (scripts + other commands) per Check answered. One Check at a time: a grpc-js client sending the same bytes sequentially, latency at the client.`,
    "",
    "| figure | target (Done when) | today, median | 2026-11-23 | 2026-12-07 | |",
    "|---|---|---|---|---|---|",
    `| full, share of the no-op's Check/s | >= 0.50 | **${x2(f.fullShare)}** | 0.40 | 0.28 | ${met(f.fullShare >= 0.5)} |`,
    `| riskgate + Redis, share of the no-op's Check/s | (0.70 in DESIGN.md) | **${x2(f.riskgateShare)}** | 0.46 | 0.32 | ${met(f.riskgateShare >= 0.7)} |`,
    `| server CPU per Check, full / no-op | <= 2x | **${x2(f.cpuRatioFull)}x** (${f.cpuPerCheck.full?.toFixed(0)} / ${f.cpuPerCheck.noop?.toFixed(0)} µs) | 2.0x | 3.9x | ${met(f.cpuRatioFull <= 2)} |`,
    `| Redis's own time per Check inside the scripts (commandstats), riskgate / full | - | ${f.redisPerCheck.riskgate?.toFixed(0)} / ${f.redisPerCheck.full?.toFixed(0)} µs (the no-op's whole CPU per Check: ${f.cpuPerCheck.noop?.toFixed(0)} µs) | - | - | |`,
    `| server CPU per Check, riskgate / no-op | - | ${x2(f.cpuRatioRiskgate)}x (${f.cpuPerCheck.riskgate?.toFixed(0)} µs) | - | - | |`,
    `| one Check at a time, p50 riskgate − no-op | <= 200 µs | **${us(f.p50Diff)} µs** (${us(f.p50.riskgate ?? 0)} / ${us(f.p50.noop ?? 0)} µs; p99 ${us(f.p99.riskgate ?? 0)} / ${us(f.p99.noop ?? 0)} µs) | 420 µs (577 / 157) | 1,064 µs (1,362 / 298) | ${met(f.p50Diff <= 200)} |`,
    `| one Check at a time, p50 full − no-op | - | ${us(f.p50DiffFull)} µs (${us(f.p50.full ?? 0)} µs; p99 ${us(f.p99.full ?? 0)} µs) | - | - | |`,
    `| full, --workers 2 gain over one worker | >= 1.5x (no-op's own: see next row) | **x${x2(f.fullGain)}** | x1.38 | x1.12 | ${met(f.fullGain >= 1.5)} |`,
    `| no-op grpc-js, 2 processes gain over one | (reference) | x${x2(f.noopGain)} | - | - | |`,
    `| Redis round trips per Check, riskgate / full | 1.00 | **${f.tripsRiskgate.toFixed(3)} / ${f.tripsFull.toFixed(3)}** | 1.141 | 1.14 | ${met(Math.max(f.tripsRiskgate, f.tripsFull) <= 1.005)} |`,
    `| \`failure.budget\` decisions under saturation (full), all rounds | 0 | **${budgetText}** | - | 3,823 of 21,667 in one round (2 workers) | ${met(f.budget.full + f.budget.full2 === 0)} |`,
    `| \`failure.store\` decisions under saturation (full; store call over its 50 ms timeout) | (0: a failure-mode answer) | ${storeText} | - | - | ${met(f.budget.store + f.budget.store2 === 0)} |`,
    `| Checks answered by the failure mode under saturation (full; they flatter Check/s and CPU) | 0 | ${failureShare} | - | - | |`,
    `| Checks shed under saturation (\`riskgate_checks_shed_total\`) | overflow shed and counted | ${f.shed === undefined ? "n/a (metric not exported)" : String(f.shed)} | - | - | ${f.shed === undefined ? "**not met**" : ""} |`,
    `| \`riskgate replay\`, production policy, decisions per CPU-second | >= 10,000 | ${replay === undefined ? "not run with this part: see its own section" : `**${us(replay)}**`} | 13,850 (demo policy) | - | ${replay === undefined ? "" : met(replay >= 10_000)} |`,
    "",
    "The previous columns are issue 24's figures, measured with bench/policy.yaml (its shipped signals on) rather than production.yaml, and the replay figure with the demo policy: they are orientation, not the same workload.",
    "",
    "| round | server | Check/s | of no-op | CPU µs/Check | p50 ms | p99 ms | Redis scripts / Check (commands inside) | Redis µs / Check | decisions | failure.budget / .store | shed | failed | load 1-min |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...runRows(input),
    "",
    "One Check at a time (µs at the client, per round):",
    "",
    "| server | p50 | p99 |",
    "|---|---|---|",
    ...["noop", "riskgate", "full"].map(
      (k) => `| ${k} | ${seqRounds(k, "p50")} | ${seqRounds(k, "p99")} |`,
    ),
    "",
    ...monitorLines(input),
  ];
  return { markdown: lines.join("\n"), figures: f };
}
