/**
 * Reads a V8 .cpuprofile (`node --cpu-prof`) and prints where the CPU went: self time by area
 * (what a Check is made of: HTTP/2, grpc-js, decode, identity, ioredis, signals, telemetry,
 * GC...), by package or riskgate file, and the top functions. A native function with no script
 * of its own (writeUtf8String, a JSON builtin) is charged to the package or file that called it,
 * so "ioredis" includes the string writes it asks for.
 *
 *   node dist/bench/cpuprofile-summary.js FILE [--from S] [--to S] [--checks N]
 *     [--cpu-per-check US] [--top 25]
 *
 * --from/--to: seconds after the profile's start (the steady-state window); --checks: Checks
 * the server answered in that window, and --cpu-per-check its CPU per Check from /proc, to
 * print microseconds per Check.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SummaryOptions {
  /** Window start and end, seconds after the profile's start. */
  readonly from?: number;
  readonly to?: number;
  readonly checks?: number;
  /**
   * The server's CPU per Check measured apart (from /proc): the per-Check column then spreads
   * it by the profile's shares. Sample intervals are wall time, so on a machine where the
   * process waits for a core the profile's own milliseconds overstate its CPU; the shares hold.
   */
  readonly cpuPerCheckUs?: number;
  readonly top?: number;
}

const SPECIAL = new Set(["(garbage collector)", "(idle)", "(program)", "(root)"]);

/** The package (node_modules/...), node core module or riskgate file a script URL belongs to. */
export function groupOf(url: string): string {
  if (url.startsWith("node:")) {
    const path = url.slice(5).replace(/^internal\//, "");
    return `node:${path.split("/")[0]?.replace(/\.js$/, "")}`;
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm !== -1) {
    const parts = url.slice(nm + 14).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
  }
  const src = url.indexOf("/dist/src/");
  if (src !== -1) return `riskgate ${url.slice(src + 10)}`;
  const bench = url.indexOf("/dist/bench/");
  if (bench !== -1) return `bench ${url.slice(bench + 12)}`;
  return url === "" ? "(native)" : url;
}

/** A script URL without the machine's folders: node:..., pkg/file.js, or riskgate's src path. */
function shortPath(url: string): string {
  const nm = url.lastIndexOf("/node_modules/");
  if (nm !== -1) return url.slice(nm + 14);
  const src = url.indexOf("/dist/");
  return src !== -1 ? url.slice(src + 6) : url;
}

/** The part of a Check a group belongs to, for the flame-graph summary. */
export function areaOf(group: string): string {
  const rg = group.startsWith("riskgate ") ? group.slice(9) : undefined;
  if (group === "(garbage collector)") return "GC";
  if (group === "(program)") return "V8 and native, not attributed ((program))";
  if (group === "(idle)") return "(idle)";
  if (/^node:(http2|net|stream_base_commons|dgram|tcp)/.test(group)) return "node:http2 + net";
  if (group.startsWith("node:")) return "node core (events, streams, timers, ticks, other)";
  if (group === "@grpc/grpc-js") return "grpc-js";
  if (/^(protobufjs|@protobufjs\/|@grpc\/proto-loader|long)/.test(group))
    return "protobuf decode/encode";
  if (/^(ioredis|@ioredis\/|redis-|denque|cluster-key-slot|standard-as-callback)/.test(group))
    return "ioredis";
  if (/^(prom-client|pino|sonic-boom|@opentelemetry\/|tdigest|bintrees|thread-stream)/.test(group))
    return "telemetry (packages)";
  if (group === "jose") return "identity (jose)";
  if (rg === undefined) return group === "(native)" ? "native, no caller script" : "other packages";
  if (/^access\/(identity|token-verifier|key-source)/.test(rg)) return "identity (riskgate)";
  if (rg.startsWith("state/")) return "store: Lua args, replies (riskgate state/)";
  if (rg.startsWith("transport/")) return "transport (riskgate: request, response, boundary)";
  if (rg.startsWith("telemetry/")) return "telemetry (riskgate)";
  if (rg.startsWith("access/signals/")) return "signals";
  if (rg.startsWith("access/") || rg.startsWith("geo/"))
    return "pipeline: routes, license, geo, score, decide";
  return "riskgate, other";
}

interface Totals {
  readonly byGroup: Map<string, number>;
  readonly byArea: Map<string, number>;
  readonly byFunction: Map<string, number>;
  /** Natives charged to their caller's group: "name <- group". */
  readonly natives: Map<string, number>;
  readonly sampledMs: number;
}

function tally(profile: CpuProfile, opts: SummaryOptions): Totals {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // the group a node's self time is charged to: its script's, or its nearest scripted caller's
  const groupCache = new Map<number, string>();
  const chargedGroup = (id: number): string => {
    const cached = groupCache.get(id);
    if (cached !== undefined) return cached;
    const frame = (byId.get(id) as ProfileNode).callFrame;
    let g: string;
    if (SPECIAL.has(frame.functionName) && frame.url === "") g = frame.functionName;
    else if (frame.url !== "") g = groupOf(frame.url);
    else g = callerGroup(id);
    groupCache.set(id, g);
    return g;
  };
  // a native's caller: the nearest frame of a package or riskgate file, past node's own
  // modules (a socket write charged to ioredis or grpc-js, not to node:stream_base_commons)
  const callerGroup = (id: number): string => {
    let fallback: string | undefined;
    for (let up = parent.get(id); up !== undefined; up = parent.get(up)) {
      const url = (byId.get(up) as ProfileNode).callFrame.url;
      if (url === "") continue;
      const g = groupOf(url);
      if (!g.startsWith("node:")) return g;
      fallback ??= g;
    }
    return fallback ?? "(native)";
  };
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const totals: Totals = {
    byGroup: new Map(),
    byArea: new Map(),
    byFunction: new Map(),
    natives: new Map(),
    sampledMs: 0,
  };
  const from = (opts.from ?? 0) * 1e6;
  const to = (opts.to ?? Number.POSITIVE_INFINITY) * 1e6;
  let t = 0;
  let sampled = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) continue;
    const id = profile.samples[i] as number;
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const group = chargedGroup(id);
    const ms = dt / 1000;
    sampled += ms;
    add(totals.byGroup, group, ms);
    add(totals.byArea, areaOf(group), ms);
    const where =
      frame.url === ""
        ? `(native, for ${group})`
        : `${shortPath(frame.url)}:${frame.lineNumber + 1}`;
    add(totals.byFunction, `${frame.functionName || "(anonymous)"} ${where}`, ms);
    if (frame.url === "" && !SPECIAL.has(frame.functionName))
      add(totals.natives, `${frame.functionName} <- ${group}`, ms);
  }
  return { ...totals, sampledMs: sampled };
}

/** The summary as markdown tables. */
export function summarise(profile: CpuProfile, opts: SummaryOptions = {}): string {
  const t = tally(profile, opts);
  const idle = t.byArea.get("(idle)") ?? 0;
  const busy = t.sampledMs - idle;
  const pct = (ms: number) => `${((ms / Math.max(busy, 1e-9)) * 100).toFixed(1)}%`;
  const perCheckUs =
    opts.cpuPerCheckUs ?? (opts.checks === undefined ? undefined : (busy * 1000) / opts.checks);
  const perCheck = (ms: number) =>
    perCheckUs === undefined ? "" : ` | ${((ms / Math.max(busy, 1e-9)) * perCheckUs).toFixed(1)}`;
  const head = perCheckUs === undefined ? "" : " | µs per Check";
  const rows = (m: Map<string, number>, n: number, skipIdle = true) =>
    [...m]
      .filter(([k]) => !skipIdle || !/^\((idle|root)\)/.test(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => `| ${k} | ${ms.toFixed(0)} | ${pct(ms)}${perCheck(ms)} |`);
  const window =
    opts.from === undefined && opts.to === undefined
      ? "the whole profile"
      : `${opts.from ?? 0}..${opts.to ?? "end"} s after the profile's start`;
  return [
    `Window: ${window}; ${t.sampledMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy, ${idle.toFixed(0)} ms idle${opts.checks === undefined ? "" : `; ${opts.checks} Checks answered, ${((busy * 1000) / opts.checks).toFixed(1)} µs of busy samples per Check`}${opts.cpuPerCheckUs === undefined ? "" : `; the µs column spreads the ${opts.cpuPerCheckUs.toFixed(1)} µs of CPU per Check measured from /proc by these shares`}. Shares are of busy time (self time; a native function is charged to the package or riskgate file that called it).`,
    "",
    `| area | self ms | share${head} |`,
    `|---|---|---${head === "" ? "" : "|---"}|`,
    ...rows(t.byArea, 50),
    "",
    `| package or riskgate file | self ms | share${head} |`,
    `|---|---|---${head === "" ? "" : "|---"}|`,
    ...rows(t.byGroup, 40),
    "",
    `| top function (self) | self ms | share${head} |`,
    `|---|---|---${head === "" ? "" : "|---"}|`,
    ...rows(t.byFunction, opts.top ?? 25),
    "",
    `| native function <- charged to | self ms | share${head} |`,
    `|---|---|---${head === "" ? "" : "|---"}|`,
    ...rows(t.natives, 12),
  ].join("\n");
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      checks: { type: "string" },
      "cpu-per-check": { type: "string" },
      top: { type: "string" },
    },
  });
  const file = positionals[0];
  if (file === undefined) {
    process.stderr.write(
      "usage: node dist/bench/cpuprofile-summary.js FILE [--from S] [--to S] [--checks N] [--cpu-per-check US] [--top 25]\n",
    );
    process.exitCode = 2;
    return;
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const opts = Object.fromEntries(
    Object.entries({
      from: num(values.from),
      to: num(values.to),
      checks: num(values.checks),
      cpuPerCheckUs: num(values["cpu-per-check"]),
      top: num(values.top),
    }).filter(([, v]) => v !== undefined),
  ) as SummaryOptions;
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  process.stdout.write(`${summarise(profile, opts)}\n`);
}

if (process.argv[1] === new URL(import.meta.url).pathname) main();
