import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * `riskgate <command> --help` for every command, from the built CLI: exit 0, and the flags, an
 * example and the exit codes, in step with the command line reference (docs/reference/cli.md).
 */

const CLI = "dist/src/cli/main.js";
const CLI_DOC = "docs/reference/cli.md";
const COMMANDS = [
  "serve",
  "token",
  "key",
  "check",
  "health",
  "policy",
  "replay",
  "explain",
] as const;

async function riskgate(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { ...process.env, RISKGATE_LOG_LEVEL: "warn" },
      timeout: 30_000,
    });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "" };
  }
}

/** The command table of the reference: each command's first cell and its exit-code cell. */
function documented(command: string): { flags: string[]; exits: string[] } {
  const rows = readFileSync(CLI_DOC, "utf8")
    .split("\n")
    .filter((l) => l.startsWith(`| \`riskgate ${command}`));
  expect(rows.length, `${CLI_DOC} documents riskgate ${command}`).toBeGreaterThan(0);
  const cells = rows.map((r) => r.split(/(?<!\\)\|/).map((c) => c.trim()));
  return {
    flags: [
      ...new Set(cells.flatMap((c) => [...(c[1] ?? "").matchAll(/--[a-z-]+/g)].map((m) => m[0]))),
    ],
    exits: command === "serve" ? serveExits() : digits(cells.map((c) => c[3] ?? "")),
  };
}

const digits = (texts: string[]) => [
  ...new Set(texts.flatMap((t) => [...t.matchAll(/\b\d\b/g)].map((m) => m[0]))),
];

/** serve's codes: the first column of the reference's "Exit codes" table. */
function serveExits(): string[] {
  const text = readFileSync(CLI_DOC, "utf8");
  const table = text.slice(text.indexOf("## Exit codes"));
  return [...table.matchAll(/^\| (\d) \|/gm)].map((m) => m[1] as string);
}

/** The exit codes a help text lists under "Exit codes". */
function exitCodes(help: string): string[] {
  const section = help.slice(help.indexOf("Exit codes"));
  return [...section.matchAll(/^ {2}(\d) {2}/gm)].map((m) => m[1] as string);
}

describe("riskgate <command> --help", () => {
  it.each(COMMANDS)("%s --help: exit 0, flags, an example, exit codes", async (command) => {
    const { code, stdout } = await riskgate(command, "--help");
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^riskgate ${command}`));
    expect(stdout).toContain("Usage: ");
    expect(stdout).toMatch(/\nExample:\n {2}\S/);
    const { flags, exits } = documented(command);
    for (const flag of flags) expect(stdout, `${command} --help names ${flag}`).toContain(flag);
    // every exit code the reference gives the command, and those only
    expect(new Set(exitCodes(stdout))).toEqual(new Set(exits));
  });

  it("-h and `riskgate help <command>` say the same", async () => {
    const [long, short, named, validate, policy, defaulted, serve] = await Promise.all([
      riskgate("token", "--help"),
      riskgate("token", "-h"),
      riskgate("help", "token"),
      riskgate("policy", "validate", "--help"),
      riskgate("policy", "--help"),
      // serve is the default command: its flags with --help are serve's help
      riskgate("--dev", "--help"),
      riskgate("serve", "--help"),
    ]);
    expect(short).toEqual(long);
    expect(named).toEqual(long);
    expect(validate).toEqual(policy);
    expect(defaulted).toEqual(serve);
  });

  it("riskgate --help lists every command, an example and the exit codes", async () => {
    const { code, stdout } = await riskgate("--help");
    expect(code).toBe(0);
    for (const command of COMMANDS) expect(stdout).toContain(`riskgate ${command}`);
    expect(stdout).toContain("riskgate <command> --help");
    expect(stdout).toMatch(/\nExample:\n/);
    expect(stdout).toMatch(/\nExit codes: /);
  });
});
