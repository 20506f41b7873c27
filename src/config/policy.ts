import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { deepFreeze } from "../deep-freeze.js";
import { PolicyError, type PolicyIssue } from "../errors.js";
import type { PolicyBase } from "./policy-schema.js";

/** One validated, frozen policy. A reload swaps the whole policy at once. */
export interface LoadedPolicy<Doc> {
  /** Short content hash: names the policy in audit lines and metrics. */
  readonly version: string;
  /** Where it was loaded from. */
  readonly source: string;
  readonly doc: Doc;
}

/** Reads and validates policy files against one schema (the access engine's, with its signals). */
export interface PolicyLoader<Doc> {
  /** Reads, parses and validates a policy file. Throws {@link PolicyError} naming every problem. */
  load(file: string): Promise<LoadedPolicy<Doc>>;
  /** Parses and validates policy YAML text; `source` names it in errors. */
  parse(text: string, source: string): LoadedPolicy<Doc>;
}

/** A loader for `schema`: strict parsing, every error with its path, the result frozen. */
export function policyLoader<Doc extends PolicyBase>(
  schema: z.ZodType<Doc, unknown>,
): PolicyLoader<Doc> {
  const parse = (text: string, source: string) => parsePolicy(schema, text, source);
  return { parse, load: (file) => loadPolicyFile(schema, file) };
}

async function loadPolicyFile<Doc extends PolicyBase>(
  schema: z.ZodType<Doc, unknown>,
  file: string,
): Promise<LoadedPolicy<Doc>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new PolicyError(
      "RISKGATE_POLICY_UNREADABLE",
      file,
      [{ path: "", message: (err as Error).message }],
      { cause: err },
    );
  }
  return parsePolicy(schema, text, file);
}

function parsePolicy<Doc extends PolicyBase>(
  schema: z.ZodType<Doc, unknown>,
  text: string,
  source: string,
): LoadedPolicy<Doc> {
  const yamlDoc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (yamlDoc.errors.length > 0) {
    throw new PolicyError(
      "RISKGATE_POLICY_UNREADABLE",
      source,
      yamlDoc.errors.map((e) => ({ path: "", message: e.message.split("\n")[0] ?? e.message })),
    );
  }
  const result = schema.safeParse(yamlDoc.toJS());
  if (!result.success) {
    throw new PolicyError("RISKGATE_POLICY_INVALID", source, result.error.issues.map(toIssue));
  }
  const doc = result.data;
  const crossIssues = crossCheck(doc);
  if (crossIssues.length > 0) throw new PolicyError("RISKGATE_POLICY_INVALID", source, crossIssues);
  return Object.freeze({
    version: createHash("sha256").update(text).digest("hex").slice(0, 12),
    source,
    doc: deepFreeze(doc),
  });
}

function toIssue(issue: z.core.$ZodIssue): PolicyIssue {
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown key(s): ${issue.keys.join(", ")}`;
  return { path: formatPath(issue.path), message };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** Rules that span several fields: names that must exist, names that must be unique. */
function crossCheck(doc: PolicyBase): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const tiers = new Set(Object.keys(doc.tiers));
  for (const [name, tier] of Object.entries(doc.tiers)) {
    if (tier.downgrade_to !== undefined && !tiers.has(tier.downgrade_to)) {
      issues.push({
        path: `tiers.${name}.downgrade_to`,
        message: `names unknown tier "${tier.downgrade_to}"`,
      });
    }
  }
  if (doc.anonymous_tier !== undefined && !tiers.has(doc.anonymous_tier)) {
    issues.push({ path: "anonymous_tier", message: `names unknown tier "${doc.anonymous_tier}"` });
  }
  const seen = new Set<string>();
  doc.routes.forEach((route, i) => {
    if (seen.has(route.name)) {
      issues.push({ path: `routes[${i}].name`, message: `duplicate route name "${route.name}"` });
    }
    seen.add(route.name);
    for (const t of route.tiers ?? []) {
      if (!tiers.has(t))
        issues.push({ path: `routes[${i}].tiers`, message: `unknown tier "${t}"` });
    }
    if (route.auth === "optional" && doc.anonymous_tier === undefined) {
      issues.push({
        path: `routes[${i}].auth`,
        message: "auth: optional needs anonymous_tier to be set",
      });
    }
  });
  return [...issues, ...identityIssues(doc, tiers)];
}

/** The identity sources' own references: the tiers they grant, the routes that need them. */
function identityIssues(doc: PolicyBase, tiers: ReadonlySet<string>): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  doc.routes.forEach((route, i) => {
    if (route.peer === "with_token" && doc.identity.mtls === undefined) {
      issues.push({ path: `routes[${i}].peer`, message: "peer: with_token needs identity.mtls" });
    }
  });
  const introspection = doc.identity.introspection;
  if (introspection !== undefined && introspection.timeout_ms >= doc.failure.budget_ms) {
    issues.push({
      path: "identity.introspection.timeout_ms",
      message: `must be below failure.budget_ms (${doc.failure.budget_ms}): a slow endpoint is then named, not the decision's budget`,
    });
  }
  doc.identity.mtls?.peers.forEach((peer, i) => {
    if (!tiers.has(peer.tier)) {
      issues.push({
        path: `identity.mtls.peers[${i}].tier`,
        message: `unknown tier "${peer.tier}"`,
      });
    }
  });
  return issues;
}
