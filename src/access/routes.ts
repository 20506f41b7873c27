import type { PolicyDocument, RoutePolicy, Sensitivity } from "../config/policy-schema.js";
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

/** Envoy's `context_extensions` key that names a route explicitly. */
export const ROUTE_EXTENSION_KEY = "riskgate_route";

/** Compiles the ordered route rules of a policy. */
export function compileRoutes(routes: readonly RoutePolicy[]): CompiledRoute[] {
  return routes.map((rule) => ({
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
}

/**
 * Resolves the route: a `riskgate_route` context extension naming a known route wins; otherwise
 * the first rule whose host, path and method all match; otherwise the policy's default route.
 */
export function resolveRoute(
  routes: readonly CompiledRoute[],
  byName: ReadonlyMap<string, CompiledRoute>,
  defaults: PolicyDocument["default_route"],
  req: AccessRequest,
): ResolvedRoute {
  const named = req.contextExtensions[ROUTE_EXTENSION_KEY];
  let found = named === undefined ? undefined : byName.get(named);
  if (found === undefined) {
    for (const route of routes) {
      if (route.matches(req)) {
        found = route;
        break;
      }
    }
  }
  if (found !== undefined) return found.resolved;
  let fallback = defaultRoutes.get(defaults);
  if (fallback === undefined) {
    fallback = Object.freeze({
      name: "default",
      rule: undefined,
      auth: "required",
      sensitivity: defaults.sensitivity,
    });
    defaultRoutes.set(defaults, fallback);
  }
  return fallback;
}

/** The default route's resolution, per policy document (the documents are never mutated). */
const defaultRoutes = new WeakMap<PolicyDocument["default_route"], ResolvedRoute>();

function compileMatcher(rule: RoutePolicy): (req: AccessRequest) => boolean {
  const hosts = rule.match.hosts === undefined ? undefined : new Set(rule.match.hosts);
  const wildcardHosts = rule.match.hosts?.filter((h) => h.startsWith("*.")).map((h) => h.slice(1));
  const methods = rule.match.methods === undefined ? undefined : new Set(rule.match.methods);
  const path = rule.match.path;
  let pathMatches: (p: string) => boolean = () => true;
  if (path !== undefined) {
    if ("exact" in path) pathMatches = (p) => p === path.exact;
    else if ("prefix" in path) pathMatches = (p) => p.startsWith(path.prefix);
    else {
      const re = new RegExp(`^(?:${path.pattern})$`);
      pathMatches = (p) => re.test(p);
    }
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
