#!/usr/bin/env node
import { runCheck } from "./check.js";
import { runExplain } from "./explain.js";
import { runHealth } from "./health.js";
import { runPolicy } from "./policy.js";
import { runReplay } from "./replay.js";
import { runServe } from "./serve.js";
import { runToken } from "./token.js";

const USAGE = `riskgate: risk-based access and license enforcement for Envoy (ext_authz v3)

Usage:
  riskgate [serve] [--dev] [--policy FILE] [--address HOST:PORT]   run the server
  riskgate token --sub ID [--tier T] [--org O] [--entitlements a,b] [--amr pwd,mfa] [--acr X] [--ttl 1h]
  riskgate check [--address HOST:PORT] [--token JWT] [--method M] [--path P] [--host H] [--ip IP] [--header k=v]... [--explain --policy FILE [--dev]]
  riskgate health [--address HOST:PORT]                           exit 0 when SERVING
  riskgate policy validate FILE                                   exit 0 valid, 2 invalid
  riskgate explain --policy FILE [--jwks FILE | --dev] (REQUEST.json | --log FILE --request-id ID)
  riskgate replay --policy FILE [--jwks FILE | --dev] [--input FILE|-] [--out FILE] [--against OLD] [--html FILE]

Settings come from environment variables (see README, "Settings").`;

const commands: Record<string, (args: string[]) => Promise<number>> = {
  serve: runServe,
  token: runToken,
  check: runCheck,
  health: runHealth,
  policy: runPolicy,
  replay: runReplay,
  explain: runExplain,
};

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (first === undefined || first.startsWith("-")) return runServe(argv);
  const command = commands[first];
  if (command === undefined) {
    process.stderr.write(`riskgate: unknown command "${first}"\n\n${USAGE}\n`);
    return 2;
  }
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    // serve keeps the process alive itself; other commands end here.
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`riskgate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
