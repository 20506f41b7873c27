import { REASONS } from "./reasons.js";
import { SIGNALS } from "./signals/index.js";

/**
 * The reference tables built from the registries, as Markdown rows, for the docs: the
 * reason-code table (every code with its meaning) and the signal table (each registered signal,
 * in running order, with its policy section, its reason codes and what it runs after). A test
 * keeps the documented tables in step with these.
 */

const code = (text: string) => `\`${text}\``;

/** `| code | meaning |` rows of every reason code. */
export function reasonCodeRows(): string[] {
  return Object.entries(REASONS).map(([name, meaning]) => `| ${code(name)} | ${meaning} |`);
}

/** `| signal | policy | reason codes | runs after |` rows, in the registry's order. */
export function signalRows(): string[] {
  return SIGNALS.map((s) => {
    const section = s.policy === undefined ? "-" : code(`signals.${s.policy.key}`);
    const reasons = Object.keys(s.reasons).map(code).join(", ");
    const after = (s.after ?? []).map(code).join(", ") || "-";
    return `| ${code(s.name)} | ${section} | ${reasons} | ${after} |`;
  });
}
