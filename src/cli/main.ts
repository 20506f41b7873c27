#!/usr/bin/env node
import { HELP as CHECK_HELP, runCheck } from "./check.js";
import { HELP as HEALTH_HELP, runHealth } from "./health.js";
import { HELP as KEY_HELP, runKey } from "./key.js";
import { HELP as POLICY_HELP, runPolicy } from "./policy.js";
import { runServe, HELP as SERVE_HELP } from "./serve.js";
import { runToken, HELP as TOKEN_HELP } from "./token.js";

const USAGE = `riskgate: risk-based access and license enforcement for Envoy (ext_authz v3)

Usage:
  riskgate [serve] [--dev] [--policy FILE] [--address HOST:PORT] [--workers N]   run the server
  riskgate token --sub ID [--tier T] [--org O] [--entitlements a,b] [--amr pwd,mfa] [--acr X] [--ttl 1h]
  riskgate key --sub ID --tier T [--org O] [--entitlements a,b] [--expires 90d] [--networks CIDR,...]
  riskgate check [--address HOST:PORT] [--token JWT] [--method M] [--path P] [--host H] [--ip IP] [--header k=v]... [--explain --policy FILE [--dev]]
  riskgate health [--address HOST:PORT]                           exit 0 when SERVING
  riskgate policy validate FILE                                   exit 0 valid, 2 invalid
  riskgate explain --policy FILE [--jwks FILE | --dev] (REQUEST.json | --log FILE --request-id ID)
  riskgate replay --policy FILE [--jwks FILE | --dev] [--input FILE|-] [--out FILE] [--against OLD] [--html FILE]
  riskgate <command> --help                                       a command's flags, example, exit codes

Example:
  riskgate serve --dev &
  riskgate check --token "$(riskgate token --sub alice --tier pro --amr pwd,mfa)" --path /v1/items

Exit codes: each command's --help lists its own. serve: 0 stopped cleanly, 1 unexpected error,
2 a setting or file is wrong, 3 keys unavailable, 4 an address could not be bound; check and
explain: 0 allow, 1 any other decision, 2 an error; an unknown command: 2.

Settings come from environment variables (docs/reference/settings.md); the command line
reference is docs/reference/cli.md.`;

interface Command {
  run(args: string[]): Promise<number>;
  help(): Promise<string>;
}

const commands: Record<string, Command> = {
  serve: { run: runServe, help: async () => SERVE_HELP },
  token: { run: runToken, help: async () => TOKEN_HELP },
  key: { run: (args) => runKey(args), help: async () => KEY_HELP },
  check: { run: runCheck, help: async () => CHECK_HELP },
  health: { run: runHealth, help: async () => HEALTH_HELP },
  policy: { run: runPolicy, help: async () => POLICY_HELP },
  // loaded on use: replay and explain bring protobufjs and the geo database, which the other
  // commands (and every `check` a script runs) should not pay for at start
  replay: {
    run: async (args) => (await import("./replay-command.js")).runReplay(args),
    help: async () => (await import("./replay-command.js")).HELP,
  },
  explain: {
    run: async (args) => (await import("./explain-command.js")).runExplain(args),
    help: async () => (await import("./explain-command.js")).HELP,
  },
};

const asksHelp = (args: readonly string[]) => args.includes("--help") || args.includes("-h");

/** Prints `text` on stdout; asking for help always succeeds. */
function printHelp(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") {
    const named = first === "help" ? commands[rest[0] ?? ""] : undefined;
    return printHelp(named === undefined ? USAGE : await named.help());
  }
  if (first === undefined || first.startsWith("-")) {
    return asksHelp(argv) ? printHelp(SERVE_HELP) : runServe(argv);
  }
  const command = commands[first];
  if (command === undefined) {
    process.stderr.write(`riskgate: unknown command "${first}"\n\n${USAGE}\n`);
    return 2;
  }
  return asksHelp(rest) ? printHelp(await command.help()) : command.run(rest);
}

/**
 * Ends the process with `code`. Everything the command opened is closed by then, so the process
 * normally ends on its own; the timer (unref'd: it never keeps the process alive) only fires when
 * something outside our control still holds it, such as a cluster worker's IPC channel.
 */
function exit(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 1000).unref();
}

main(process.argv.slice(2)).then(exit, (err: unknown) => {
  process.stderr.write(`riskgate: ${err instanceof Error ? err.message : String(err)}\n`);
  exit(2);
});
