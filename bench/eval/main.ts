/**
 * `npm run eval`: simulate a seeded labelled week and run it through the real pipeline with each
 * policy, closed loop: every verdict comes back to the simulated actor before it sends its next
 * request (people step up, machines back off, attackers cannot answer). Then join decisions with
 * labels and print the tables.
 *
 *   npm run eval -- [--seed S] [--scale N] [--days D] [--out DIR] [--policy FILE ...]
 *                   [--open-loop] [--generate-only]
 */
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { openEngine } from "./engine.js";
import { createMinter, generate, trafficOf, writeGenerated } from "./generate.js";
import { runClosedLoop } from "./loop.js";
import { createRng } from "./rng.js";
import { formatSummary, formatTables, GRACE_REQUESTS, scoreDecisions } from "./score.js";
import { MACHINE_POPULATIONS, simulate } from "./traffic.js";

const DEFAULT_POLICIES = ["policies/demo.yaml", "policies/production.yaml"];

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

interface RunArgs {
  readonly seed: string;
  readonly days: number;
  readonly scale: number;
  readonly out: string;
  readonly react: boolean;
}

async function evaluate(policy: string, a: RunArgs): Promise<void> {
  const started = Date.now();
  const dir = join(a.out, basename(policy, ".yaml"));
  await mkdir(dir, { recursive: true });
  const opts = { seed: a.seed, days: a.days, scale: a.scale, ...(await identityOf(policy)) };
  const plan = simulate(createRng(a.seed), trafficOf(opts));
  const minter = await createMinter(a.seed, opts.issuer, opts.audience);
  const jwksFile = join(dir, "jwks.json");
  await writeFile(jwksFile, `${JSON.stringify(minter.jwks, null, 2)}\n`);
  const streams = {
    requests: createWriteStream(join(dir, "requests.jsonl")),
    labels: createWriteStream(join(dir, "labels.jsonl")),
    decisions: createWriteStream(join(dir, "decisions.jsonl")),
  };
  const engine = await openEngine(policy, jwksFile);
  const loopRng = createRng(`${a.seed}:loop`);
  let outcome: Awaited<ReturnType<typeof runClosedLoop>>;
  try {
    outcome = await runClosedLoop(plan, engine, minter, {
      react: a.react,
      rngFor: (actor) => loopRng.fork(actor),
      out: streams,
    });
  } finally {
    await engine.close();
    await Promise.all(
      Object.values(streams).map((s: Writable) => {
        s.end();
        return finished(s);
      }),
    );
  }
  const ms = Date.now() - started;
  const groups = scoreDecisions(outcome.labels, outcome.decisions);
  console.log(`## ${policy}\n`);
  console.log(
    `${plan.length} requests planned, ${outcome.decisions.length} sent (${a.react ? "closed loop" : "open loop"}; ${outcome.dropped} dropped by reactions); ${(ms / 1000).toFixed(1)} s (${Math.round(outcome.decisions.length / (ms / 1000))} decisions/s)\n`,
  );
  console.log(
    `${formatSummary(groups, { people: outcome.people.size, days: a.days, stepUps: outcome.stepUps, machinePopulations: MACHINE_POPULATIONS, dropped: outcome.droppedByGroup })}\n`,
  );
  console.log(`${formatTables(groups)}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "riskgate-eval-1" },
      scale: { type: "string", default: "1" },
      days: { type: "string", default: "7" },
      out: { type: "string", default: ".eval" },
      policy: { type: "string", multiple: true },
      "open-loop": { type: "boolean", default: false },
      "generate-only": { type: "boolean", default: false },
    },
  });
  const scale = Number(values.scale);
  const days = Number(values.days);
  if (!(scale > 0) || !(days >= 1 && days <= 7))
    throw new TypeError("--scale must be > 0 and --days 1..7");
  const policies = values.policy ?? DEFAULT_POLICIES;
  console.log(`# riskgate decision-quality evaluation\n`);
  console.log(
    `seed ${values.seed}, ${days} days, scale ${scale}. Attack requests count after each actor's first ${GRACE_REQUESTS}; reaching the upstream = allow, shadow allow or a header-style challenge (not a step-up challenge, throttle or deny). Legitimate requests refused = challenged (any style), throttled or denied; a retry after a step-up or a 429 is a request of its own.\n`,
  );
  for (const policy of policies) {
    if (values["generate-only"]) {
      const dir = join(values.out, basename(policy, ".yaml"));
      const g = await generate({ seed: values.seed, days, scale, ...(await identityOf(policy)) });
      await writeGenerated(g, dir);
      console.log(`${policy}: wrote the planned ${g.requests.length} requests to ${dir}`);
      continue;
    }
    await evaluate(policy, {
      seed: values.seed,
      days,
      scale,
      out: values.out,
      react: !values["open-loop"],
    });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
