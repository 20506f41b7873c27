import { loadPolicyFile } from "../access/policy.js";
import { PolicyError } from "../errors.js";

/** `riskgate policy --help`. */
export const HELP = `riskgate policy validate: check a policy file

Validates the file as riskgate serve would load it (schema, list files, signals' data) and
prints its version, tiers, routes and mode, or every problem with its path.

Usage: riskgate policy validate FILE

Example:
  riskgate policy validate policies/demo.yaml

Exit codes:
  0  valid
  2  invalid or unreadable (every problem printed on stderr), or no FILE`;

/** `riskgate policy validate FILE`: exit 0 when valid, 2 with every problem listed when not. */
export async function runPolicy(args: string[]): Promise<number> {
  const [sub, file] = args;
  if (sub !== "validate" || file === undefined) {
    process.stderr.write("usage: riskgate policy validate FILE\n");
    return 2;
  }
  try {
    const policy = await loadPolicyFile(file);
    const doc = policy.doc;
    process.stdout.write(
      `${file}: valid (version ${policy.version}; ${Object.keys(doc.tiers).length} tiers, ${doc.routes.length} routes, mode ${doc.mode})\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
