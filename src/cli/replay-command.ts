import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Writable } from "node:stream";
import { parseArgs } from "node:util";
import type { KeySource } from "../access/key-source.js";
import { loadPolicyFile, type Policy } from "../access/policy.js";
import { loadSettings } from "../config/settings.js";
import { PolicyError, RiskgateError } from "../errors.js";
import { openGeoFromSettings } from "../geo/geo-settings.js";
import { renderHtmlReport } from "../replay/html-report.js";
import { type ReplayedDecision, type ReplayOptions, replayDecisions } from "../replay/replay.js";
import { createTally, renderTally, type Tally } from "../replay/summary.js";
import { createComparison, renderComparison } from "../replay/what-if.js";
import { createDevKeySource, loadOrCreateDevKeys } from "./dev-keys.js";

export const REPLAY_USAGE =
  "usage: riskgate replay --policy FILE [--jwks FILE | --dev] [--input FILE|-] [--out FILE] [--against OLD_POLICY] [--html REPORT.html] [--reorder-window 5s] [--summary FILE]";

/** `riskgate replay --help`. */
export const HELP = `riskgate replay: decide recorded requests at their recorded time

Input: JSONL of Envoy v3 CheckRequests (proto3 JSON) or riskgate's audit log lines, in time
order. Output: one DecisionRecord a line, and a summary. With --against, what-if: both
policies over the same input, and the decisions that change.

Usage: ${REPLAY_USAGE.replace("usage: ", "")}

Flags:
  --policy FILE         the policy to decide with (required)
  --jwks FILE           a local JWKS instead of the policy's identity.jwks
  --dev                 trust the local dev key instead
  --input FILE|-        the recorded requests (default -, stdin)
  --out FILE            the DecisionRecords (default stdout)
  --summary FILE        the summary (default stdout when --out is set, else stderr)
  --against OLD         what-if: also decide with OLD and report the changes
  --html FILE           a self-contained HTML report
  --reorder-window 5s   hold lines back this long and decide them sorted by time (default 0)

Example:
  riskgate replay --policy new.yaml --against policies/demo.yaml --jwks jwks.json \\
    --input checks.jsonl --out decisions.jsonl --html what-if.html

Exit codes:
  0  replayed; with --against, no request OLD refused is allowed by the new policy
  1  with --against: a request OLD refused is allowed by the new policy
  2  an error (RISKGATE_REPLAY_INPUT_INVALID names the line), or a bad flag`;

/** Exit codes of `riskgate replay`. */
export const REPLAY_EXIT = {
  /** Replayed; with --against, no request the old policy refused is allowed by the new one. */
  ok: 0,
  /** --against: the new policy allows at least one request the old policy refused. */
  newAllow: 1,
  /** Usage, policy, keys or input error (the message names the line). */
  error: 2,
} as const;

/**
 * `riskgate replay`: decides recorded requests (CheckRequest JSONL or audit lines) at their
 * recorded time with the real pipeline, writes one DecisionRecord a line, and prints a summary.
 * With `--against OLD`, both policies decide the same input and the changes are reported.
 */
export async function runReplay(args: string[]): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(args).values;
  } catch (err) {
    process.stderr.write(`riskgate replay: ${(err as Error).message}\n${REPLAY_USAGE}\n`);
    return REPLAY_EXIT.error;
  }
  if (values.policy === undefined) {
    process.stderr.write(`${REPLAY_USAGE}\n`);
    return REPLAY_EXIT.error;
  }
  const decisionsTo: Writable =
    values.out === undefined || values.out === "-" ? process.stdout : createWriteStream(values.out);
  // the summary goes where the decisions do not
  const reportTo = decisionsTo === process.stdout ? process.stderr : process.stdout;
  try {
    const policy = await loadPolicyFile(values.policy);
    const against = values.against === undefined ? undefined : await loadPolicyFile(values.against);
    const keys = await keysFrom(values);
    const reorderWindowMs = parseWindow(values["reorder-window"]);
    // the client IP and its location come from the settings the server reads
    const settings = loadSettings(process.env);
    const geo = (await openGeoFromSettings(settings)) ?? null;
    process.stderr.write(
      `riskgate replay: geolocation ${settings.geo}: ${geo === null ? "none" : geo.description}\n`,
    );
    const { trustedHops } = settings;
    const common = { geo, reorderWindowMs, trustedHops, ...(keys === undefined ? {} : { keys }) };
    const started = performance.now();
    const tally = createTally();
    const out = { values, tally, decisionsTo };
    let { report, code } =
      against === undefined
        ? await replayAlone({ policy, ...common }, out)
        : await replayAgainst({ policy, ...common }, against, out);
    const seconds = (performance.now() - started) / 1000;
    report += `\nreplayed ${tally.total} decision${tally.total === 1 ? "" : "s"} in ${seconds.toFixed(2)} s (${Math.round(tally.total / Math.max(seconds, 1e-9))}/s)\n`;
    if (values.summary !== undefined) await writeFile(values.summary, report);
    else reportTo.write(report);
    return code;
  } catch (err) {
    if (err instanceof PolicyError || err instanceof RiskgateError) {
      process.stderr.write(`riskgate replay: ${err.code}: ${err.message}\n`);
      return REPLAY_EXIT.error;
    }
    throw err;
  } finally {
    if (decisionsTo !== process.stdout) {
      decisionsTo.end();
      await once(decisionsTo, "close").catch(() => undefined);
    }
  }
}

/** Where a replay writes: its flags, the running tally and the decisions' stream. */
interface ReplayOutput {
  readonly values: ReturnType<typeof parse>["values"];
  readonly tally: Tally;
  readonly decisionsTo: Writable;
}

/** A plain replay; its report charts the one policy (compared with itself: no changes). */
async function replayAlone(
  options: ReplayOptions,
  { values, tally, decisionsTo }: ReplayOutput,
): Promise<{ report: string; code: number }> {
  const series = createComparison({ examples: 0 });
  for await (const d of replayDecisions(options, inputLines(values.input))) {
    tally.add(d.record);
    if (values.html !== undefined) series.add(d.record, d.record);
    await writeLine(decisionsTo, d);
  }
  if (values.html !== undefined) {
    await writeFile(
      values.html,
      renderHtmlReport({ tally, comparison: series, policy: options.policy.source }),
    );
  }
  return { report: renderTally(tally), code: REPLAY_EXIT.ok };
}

/** What-if: the new policy and `against` decide the same input; the changes are reported. */
async function replayAgainst(
  options: ReplayOptions,
  against: Policy,
  { values, tally, decisionsTo }: ReplayOutput,
): Promise<{ report: string; code: number }> {
  const [a, b] = tee(inputLines(values.input));
  const newer = replayDecisions(options, a);
  const older = replayDecisions({ ...options, policy: against }, b);
  const comparison = createComparison();
  try {
    for (;;) {
      const [n, o] = await Promise.all([newer.next(), older.next()]);
      if (n.done || o.done) break;
      tally.add(n.value.record);
      comparison.add(o.value.record, n.value.record);
      await writeLine(decisionsTo, n.value);
    }
  } finally {
    await Promise.all([newer.return(undefined), older.return(undefined)]);
  }
  if (values.html !== undefined) {
    await writeFile(
      values.html,
      renderHtmlReport({
        tally,
        comparison,
        policy: options.policy.source,
        against: against.source,
      }),
    );
  }
  return {
    report: `${renderTally(tally)}\n${renderComparison(comparison)}`,
    code: comparison.newAllows > 0 ? REPLAY_EXIT.newAllow : REPLAY_EXIT.ok,
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    options: {
      policy: { type: "string" },
      jwks: { type: "string" },
      dev: { type: "boolean", default: false },
      input: { type: "string", default: "-" },
      out: { type: "string" },
      against: { type: "string" },
      html: { type: "string" },
      summary: { type: "string" },
      "reorder-window": { type: "string", default: "0" },
    },
  });
}

/** The key source the flags ask for (undefined: the policy's own identity.jwks). */
export async function keysFrom(values: {
  jwks?: string | undefined;
  dev?: boolean | undefined;
}): Promise<KeySource | string | undefined> {
  if (values.jwks !== undefined) return values.jwks;
  if (values.dev) {
    const settings = loadSettings(process.env, { dev: true });
    return createDevKeySource((await loadOrCreateDevKeys(settings.devKeysDir)).publicJwks);
  }
  return undefined;
}

/** `0`, `500ms`, `5s`, `2m` to milliseconds. */
export function parseWindow(text: string): number {
  const m = /^(\d+)\s*(ms|s|m)?$/.exec(text.trim());
  if (m === null)
    throw new RiskgateError(
      "RISKGATE_REPLAY_INPUT_INVALID",
      `--reorder-window: not a duration: "${text}" (use 0, 500ms, 5s or 2m)`,
    );
  const unit = m[2] === "m" ? 60_000 : m[2] === "s" ? 1000 : m[2] === "ms" ? 1 : 1000;
  return Number(m[1]) * unit;
}

/** The input's lines (a file, or stdin for `-`). */
export async function* inputLines(input: string): AsyncGenerator<string> {
  // opened on first read: readline emits lines as they come, and none may pass unheard
  const stream = input === "-" ? process.stdin : createReadStream(input);
  yield* createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
}

async function writeLine(out: Writable, d: ReplayedDecision): Promise<void> {
  if (!out.write(`${JSON.stringify(d.record)}\n`)) await once(out, "drain");
}

/**
 * Two iterables over one source's items, each seeing every item in order. Both are consumed
 * in step (what-if reads one decision of each policy at a time), so the queues stay short.
 */
export function tee<T>(source: AsyncIterable<T>): [AsyncIterable<T>, AsyncIterable<T>] {
  const it = source[Symbol.asyncIterator]();
  const queues: [T[], T[]] = [[], []];
  let done = false;
  let pulling: Promise<void> | undefined;
  const pull = (): Promise<void> => {
    pulling ??= it.next().then((r) => {
      pulling = undefined;
      if (r.done) done = true;
      else {
        queues[0].push(r.value);
        queues[1].push(r.value);
      }
    });
    return pulling;
  };
  const side = (i: 0 | 1): AsyncIterable<T> => ({
    async *[Symbol.asyncIterator]() {
      const q = queues[i];
      for (;;) {
        if (q.length > 0) {
          yield q.shift() as T;
          continue;
        }
        if (done) return;
        await pull();
      }
    },
  });
  return [side(0), side(1)];
}
