/**
 * `npm run eval`: generate a seeded labelled week, replay it through the real pipeline with each
 * policy (`riskgate replay`, a child process), join decisions with labels and print the tables.
 *
 *   npm run eval -- [--seed S] [--scale N] [--days D] [--out DIR] [--policy FILE ...]
 */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { generate, writeGenerated } from "./generate.js";
import type { LabelRecord } from "./model.js";
import { type DecisionRecord, formatTables, GRACE_REQUESTS, scoreDecisions } from "./score.js";

const DEFAULT_POLICIES = ["policies/demo.yaml", "policies/production.yaml"];

async function readJsonl<T>(file: string): Promise<T[]> {
  const out: T[] = [];
  const lines = createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) if (line.trim() !== "") out.push(JSON.parse(line) as T);
  return out;
}

function run(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
    child.on("error", fail);
    child.on("exit", (code) =>
      // `replay` exits 0, or non-zero only for a what-if that widens access (not used here).
      code === 0 ? ok() : fail(new Error(`${cmd} ${args.join(" ")} exited ${code}`)),
    );
  });
}

async function identityOf(policyFile: string): Promise<{ issuer: string; audience: string }> {
  // Only the identity provider's settings are read: the IdP is configured for the API.
  const doc = parseYaml(await readFile(policyFile, "utf8")) as {
    identity?: { issuers?: string[]; audiences?: string[] };
  };
  const issuer = doc.identity?.issuers?.[0];
  const audience = doc.identity?.audiences?.[0];
  if (!issuer || !audience)
    throw new Error(`${policyFile}: identity.issuers and identity.audiences are needed`);
  return { issuer, audience };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "riskgate-eval-1" },
      scale: { type: "string", default: "1" },
      days: { type: "string", default: "7" },
      out: { type: "string", default: ".eval" },
      policy: { type: "string", multiple: true },
      "generate-only": { type: "boolean", default: false },
    },
  });
  const scale = Number(values.scale);
  const days = Number(values.days);
  if (!(scale > 0) || !(days >= 1 && days <= 7))
    throw new TypeError("--scale must be > 0 and --days 1..7");
  const policies = values.policy ?? DEFAULT_POLICIES;
  const cli = resolve("dist/src/cli/main.js");
  console.log(`# riskgate decision-quality evaluation\n`);
  console.log(
    `seed ${values.seed}, ${days} days, scale ${scale}. Attack requests count after each actor's first ${GRACE_REQUESTS}; reaching the upstream = allow, shadow allow or a header-style challenge (not a step-up challenge, throttle or deny). Legitimate requests refused = challenged (either style), throttled or denied.\n`,
  );
  for (const policy of policies) {
    const started = Date.now();
    const dir = join(values.out, basename(policy, ".yaml"));
    const g = await generate({ seed: values.seed, days, scale, ...(await identityOf(policy)) });
    const files = await writeGenerated(g, dir);
    const generatedMs = Date.now() - started;
    if (values["generate-only"]) {
      console.log(`${policy}: wrote ${g.requests.length} requests to ${dir} in ${generatedMs} ms`);
      continue;
    }
    const decisionsFile = join(dir, "decisions.jsonl");
    const replayStarted = Date.now();
    await run(process.execPath, [
      cli,
      "replay",
      "--policy",
      policy,
      "--jwks",
      files.jwks,
      "--input",
      files.requests,
      "--out",
      decisionsFile,
    ]);
    const replayMs = Date.now() - replayStarted;
    const groups = scoreDecisions(
      await readJsonl<LabelRecord>(files.labels),
      await readJsonl<DecisionRecord>(decisionsFile),
    );
    console.log(`## ${policy}\n`);
    console.log(
      `${g.requests.length} requests; generated in ${(generatedMs / 1000).toFixed(1)} s, replayed in ${(replayMs / 1000).toFixed(1)} s (${Math.round(g.requests.length / (replayMs / 1000))} decisions/s)\n`,
    );
    console.log(`${formatTables(groups)}\n`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
