import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { policySchema } from "../../src/access/policy.js";

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  out?: z.ZodType;
  entries?: Record<string, string>;
};
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The schema with its wrappers (optional, default, pipes, ...) taken off. */
function bare(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.innerType !== undefined) s = def.innerType;
    else if (def.type === "pipe" && def.in !== undefined) s = def.in;
    else return s;
  }
}

/**
 * Every leaf of the schema as a reference path: `a.b`, `[]` for list items, `<name>` for map keys
 * (`<low|medium|high>` for maps keyed by an enum). Unions of objects contribute each option's keys.
 */
function leaves(schema: z.ZodType, path: string, out: Set<string>): Set<string> {
  const s = bare(schema);
  const def = defOf(s);
  const under = (key: string) => (path === "" ? key : `${path}.${key}`);
  if (def.type === "object" && def.shape !== undefined) {
    for (const [key, child] of Object.entries(def.shape)) leaves(child, under(key), out);
  } else if (def.type === "array" && def.element !== undefined && isObject(def.element)) {
    leaves(def.element, `${path}[]`, out);
  } else if (def.type === "record" && def.valueType !== undefined) {
    const keys = defOf(bare(def.keyType as z.ZodType)).entries;
    const name = keys === undefined ? "<name>" : `<${Object.keys(keys).join("|")}>`;
    if (isObject(def.valueType)) leaves(def.valueType, under(name), out);
    else out.add(path);
  } else if (def.type === "union" && def.options?.every(isObject)) {
    for (const option of def.options) leaves(option, path, out);
  } else {
    out.add(path);
  }
  return out;
}

function isObject(schema: z.ZodType): boolean {
  return defOf(bare(schema)).type === "object";
}

/** The policy reference page, whose table documents every key of the schema. */
const POLICY_DOC = "docs/reference/policy.md";

/** The policy reference table: each row's path cell and default cell. */
function referenceRows(): { paths: string[]; defaults: string }[] {
  const rows = readFileSync(POLICY_DOC, "utf8")
    .split("\n")
    .filter((line) => line.startsWith("| `"));
  return rows.map((line) => {
    // cells split at pipes, not at escaped ones (`<low\|medium\|high>`)
    const [pathCell = "", defaults = ""] = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim().replaceAll("\\|", "|"));
    // `a.b.c` / `d` / `.e`: d and e are siblings of c
    const [first = "", ...rest] = [...pathCell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
    const parent = first.slice(0, first.lastIndexOf(".") + 1);
    return { paths: [first, ...rest.map((r) => parent + r.replace(/^\./, ""))], defaults };
  });
}

/**
 * The paths the reference documents. A row that lists a group's parameters in its default cell
 * (`on, \`window_seconds: 60\`, \`cookie\``) documents each of them, and `on`/`off` its `enabled`.
 */
function documentedPaths(): Set<string> {
  const out = new Set<string>();
  for (const { paths, defaults } of referenceRows()) {
    for (const path of paths) {
      out.add(path);
      if (/^(on|off)\b/.test(defaults)) out.add(`${path}.enabled`);
      if (!/^(on|off)\b/.test(defaults)) continue;
      for (const m of defaults.matchAll(/`([a-z_]+)(?::[^`]*)?`/g)) out.add(`${path}.${m[1]}`);
    }
  }
  return out;
}

describe("the policy reference is in step with the policy schema", () => {
  const schema = leaves(policySchema, "", new Set());
  const documented = documentedPaths();
  /**
   * A schema leaf is covered by its own row, or by the row of a group documented as a whole
   * (its nearest documented ancestor, which names none of its members separately).
   */
  const covered = (leaf: string) => {
    if (documented.has(leaf)) return true;
    for (let p = leaf; /[.[]/.test(p); ) {
      p = p.replace(/(\.[^.]*|\[\])$/, "");
      if (documented.has(p)) {
        return ![...documented].some((d) => d.startsWith(`${p}.`) || d.startsWith(`${p}[]`));
      }
    }
    return false;
  };

  it("documents every key of the schema", () => {
    expect([...schema].filter((leaf) => !covered(leaf))).toEqual([]);
  });

  it("documents no key the schema lacks", () => {
    const known = (path: string) =>
      [...schema].some(
        (leaf) => leaf === path || leaf.startsWith(`${path}.`) || leaf.startsWith(`${path}[]`),
      );
    expect([...documented].filter((path) => !known(path))).toEqual([]);
  });
});
