import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { Decision } from "../access/pipeline.js";
import { loadPolicyFile, type Policy } from "../access/policy.js";
import type { AccessRequest } from "../access/request.js";
import { loadSettings } from "../config/settings.js";
import { PolicyError, RiskgateError } from "../errors.js";
import { createExplainTrace, type Explanation, renderExplanation } from "../replay/explain.js";
import { replayDecisions } from "../replay/replay.js";
import { inputLines, keysFrom } from "./replay-command.js";

export const EXPLAIN_USAGE = `usage: riskgate explain --policy FILE [--jwks FILE | --dev] [--at TIME] REQUEST.json
       riskgate explain --policy FILE [--jwks FILE | --dev] --log FILE --request-id ID`;

/** `riskgate explain --help`. */
export const HELP = `riskgate explain: decide one request locally and print every stage

The request, the route matched, the identity and license, every signal with its store
operations and points, the score, the thresholds, the rule that fired and the verdict.

${EXPLAIN_USAGE.replace("usage: ", "Usage: ")}

Flags:
  --policy FILE         the policy to decide with (required)
  --jwks FILE           a local JWKS instead of the policy's identity.jwks
  --dev                 trust the local dev key instead
  --at TIME             the decision time for a request without attributes.request.time
  --log FILE            a log (CheckRequest JSONL or audit log): the lines before the request
  --request-id ID       are replayed first, so its signals read the state they had

The same for a request given by riskgate check's flags: riskgate check ... --explain.

Example:
  riskgate explain --policy policies/demo.yaml --dev request.json
  riskgate explain --policy policies/demo.yaml --jwks jwks.json --log checks.jsonl --request-id 5f0e...

Exit codes:
  0  allow
  1  any other decision
  2  an error (unreadable request or log, request id not found), or a bad flag`;

interface ExplainFlags {
  policy?: string | undefined;
  jwks?: string | undefined;
  dev?: boolean | undefined;
  at?: string | undefined;
}

/**
 * `riskgate explain`: decides one request with the real pipeline and prints each stage. The
 * request is a CheckRequest JSON file (decided at its `attributes.request.time`, else `--at`,
 * else now), or the line of a log (CheckRequest JSONL or riskgate's audit log) with a request
 * id: the lines before it are replayed first, so its signals read the state they had.
 * Exit 0 when allowed, 1 otherwise, 2 on errors.
 */
export async function runExplain(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    process.stderr.write(`riskgate explain: ${(err as Error).message}\n${EXPLAIN_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const file = positionals[0];
  const byLog = values.log !== undefined && values["request-id"] !== undefined;
  if (values.policy === undefined || (file === undefined) === !byLog) {
    process.stderr.write(`${EXPLAIN_USAGE}\n`);
    return 2;
  }
  try {
    if (byLog) {
      return await explainLines(
        values,
        inputLines(values.log as string),
        (req) => req.id === values["request-id"],
        `request id ${values["request-id"]} not found in ${values.log}`,
      );
    }
    const json = JSON.parse(await readFile(file as string, "utf8")) as unknown;
    return await explainCheckRequest(json, values);
  } catch (err) {
    if (err instanceof PolicyError || err instanceof RiskgateError) {
      process.stderr.write(`riskgate explain: ${err.code}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof SyntaxError) {
      process.stderr.write(`riskgate explain: ${file}: not JSON: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** Explains one CheckRequest (proto3 JSON as an object), at its own time or `--at`/now. */
export async function explainCheckRequest(json: unknown, flags: ExplainFlags): Promise<number> {
  const withTime = atTime(json, flags.at);
  return explainLines(
    flags,
    (async function* () {
      yield JSON.stringify(withTime);
    })(),
    () => true,
    "no request",
  );
}

async function explainLines(
  flags: ExplainFlags,
  lines: AsyncIterable<string>,
  wanted: (req: AccessRequest) => boolean,
  notFound: string,
): Promise<number> {
  const policy: Policy = await loadPolicyFile(flags.policy as string);
  const keys = await keysFrom(flags);
  const { trustedHops } = loadSettings(process.env);
  let found: { explanation: Explanation } | undefined;
  let result: { req: AccessRequest; decision: Decision } | undefined;
  for await (const d of replayDecisions(
    {
      policy,
      trustedHops,
      ...(keys === undefined ? {} : { keys }),
      trace: (_line, req) => {
        if (found !== undefined || !wanted(req)) return undefined;
        const t = createExplainTrace();
        found = { explanation: t.explanation };
        return t.trace;
      },
    },
    lines,
  )) {
    if (found !== undefined) {
      result = { req: d.req, decision: d.decision };
      break;
    }
  }
  if (found === undefined || result === undefined) {
    process.stderr.write(`riskgate explain: ${notFound}\n`);
    return 2;
  }
  process.stdout.write(renderExplanation(found.explanation, result.req, result.decision, policy));
  return result.decision.verdict.kind === "allow" ? 0 : 1;
}

/** The CheckRequest with `attributes.request.time` set when it has none. */
function atTime(json: unknown, at: string | undefined): unknown {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return json;
  const root = json as Record<string, Record<string, Record<string, unknown>> | undefined>;
  const attributes = root.attributes ?? {};
  const request = attributes.request ?? {};
  if (request.time !== undefined && at === undefined) return json;
  return {
    ...root,
    attributes: { ...attributes, request: { ...request, time: at ?? new Date().toISOString() } },
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      policy: { type: "string" },
      jwks: { type: "string" },
      dev: { type: "boolean", default: false },
      at: { type: "string" },
      log: { type: "string" },
      "request-id": { type: "string" },
    },
  });
}
