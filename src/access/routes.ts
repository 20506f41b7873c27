import { RE2JS } from "re2js";
import type { RoutePolicy, Sensitivity } from "../config/policy-schema.js";
import type { PolicyDocument } from "./policy.js";
import type { AccessRequest } from "./request.js";

/** A route rule compiled once per policy load: matching a request allocates nothing. */
export interface CompiledRoute {
  readonly name: string;
  readonly rule: RoutePolicy;
  /** What resolving to this route answers (one object per policy load, shared by Checks). */
  readonly resolved: ResolvedRoute;
  matches(req: AccessRequest): boolean;
}

/** The route a request resolved to; `rule` is undefined for the policy's default route. */
export interface ResolvedRoute {
  readonly name: string;
  readonly rule: RoutePolicy | undefined;
  readonly auth: RoutePolicy["auth"];
  readonly sensitivity: Sensitivity;
}

/** A policy's routes compiled for matching: built with the runtime snapshot, never mutated. */
export interface RouteTable {
  /** The rules in policy order; the first match wins. */
  readonly routes: readonly CompiledRoute[];
  readonly byName: ReadonlyMap<string, CompiledRoute>;
  /** What an unmatched request resolves to (the policy's `default_route`). */
  readonly fallback: ResolvedRoute;
}

/** Envoy's `context_extensions` key that names a route explicitly. */
export const ROUTE_EXTENSION_KEY = "riskgate_route";

/**
 * Compiles a policy's ordered route rules and its default route. Path patterns are compiled with
 * RE2 semantics (as Envoy's `safe_regex`): matching runs in time linear in the path, whatever
 * the pattern. Throws on a pattern RE2 rejects (the policy schema rejects those first).
 */
export function compileRoutes(doc: Pick<PolicyDocument, "routes" | "default_route">): RouteTable {
  const routes: CompiledRoute[] = doc.routes.map((rule) => ({
    name: rule.name,
    rule,
    resolved: Object.freeze({
      name: rule.name,
      rule,
      auth: rule.auth,
      sensitivity: rule.sensitivity,
    }),
    matches: compileMatcher(rule),
  }));
  return Object.freeze({
    routes: Object.freeze(routes),
    byName: new Map(routes.map((r) => [r.name, r])),
    fallback: Object.freeze({
      name: "default",
      rule: undefined,
      auth: "required",
      sensitivity: doc.default_route.sensitivity,
    }),
  });
}

/**
 * Resolves the route: a `riskgate_route` context extension naming a known route wins; otherwise
 * the first rule whose host, path and method all match; otherwise the policy's default route.
 */
export function resolveRoute(table: RouteTable, req: AccessRequest): ResolvedRoute {
  const named = req.contextExtensions[ROUTE_EXTENSION_KEY];
  const found = named === undefined ? undefined : table.byName.get(named);
  if (found !== undefined) return found.resolved;
  for (const route of table.routes) {
    if (route.matches(req)) return route.resolved;
  }
  return table.fallback;
}

/**
 * Compiles a route path pattern with RE2 semantics, anchored at both ends. Throws (an RE2JS
 * syntax error) on what RE2 does not support: backreferences, lookaround, possessive repeats.
 */
export function compilePathPattern(pattern: string): (path: string) => boolean {
  const re = RE2JS.compile(`(?:${pattern})`);
  // a path without the pattern's literal start cannot match: most paths skip the regex
  const start = literalStart(pattern);
  if (start === "") return (path) => re.matches(path);
  return (path) => path.startsWith(start) && re.matches(path);
}

/**
 * The literal text every match of an anchored pattern starts with ("" when unsure): the
 * characters before the first special one, less the last if a quantifier may drop it. An
 * alternation anywhere makes it "" (a top-level `|` offers other starts).
 */
export function literalStart(pattern: string): string {
  if (pattern.includes("|")) return "";
  let end = 0;
  while (end < pattern.length && !SPECIAL.has(pattern[end] as string)) end++;
  const next = pattern[end];
  return next === "?" || next === "*" || next === "{"
    ? pattern.slice(0, end - 1)
    : pattern.slice(0, end);
}

const SPECIAL = new Set([..."\\^$.|?*+()[]{}"]);

function compileMatcher(rule: RoutePolicy): (req: AccessRequest) => boolean {
  const hosts = rule.match.hosts === undefined ? undefined : new Set(rule.match.hosts);
  const wildcardHosts = rule.match.hosts?.filter((h) => h.startsWith("*.")).map((h) => h.slice(1));
  const methods = rule.match.methods === undefined ? undefined : new Set(rule.match.methods);
  const path = rule.match.path;
  let pathMatches: (p: string) => boolean = () => true;
  if (path !== undefined) {
    if ("exact" in path) pathMatches = (p) => p === path.exact;
    else if ("prefix" in path) pathMatches = (p) => p.startsWith(path.prefix);
    else pathMatches = compilePathPattern(path.pattern);
  }
  return (req) => {
    if (methods !== undefined && !methods.has(req.method)) return false;
    if (hosts !== undefined && !hosts.has(req.host)) {
      if (wildcardHosts === undefined || !wildcardHosts.some((s) => req.host.endsWith(s))) {
        return false;
      }
    }
    return pathMatches(req.path);
  };
}
