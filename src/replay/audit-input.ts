import type { Identifier, IdentityOutcome } from "../access/identity.js";
import type { SourceVerified } from "../access/identity-sources/identity-source.js";
import { callerFromClaims } from "../access/license.js";
import type { Policy } from "../access/policy.js";
import type { ReasonCode } from "../access/reasons.js";
import type { AccessRequest } from "../access/request.js";
import { ROUTE_EXTENSION_KEY } from "../access/routes.js";
import { RiskgateError } from "../errors.js";
import { userAgentOfClass } from "../telemetry/user-agent-class.js";

/** A request rebuilt from an audit line, and the identity outcome the line recorded. */
export interface AuditReplay {
  readonly req: AccessRequest;
  /** Answers the recorded identity outcome (the token is not in the line, by design). */
  readonly identifier: Identifier;
}

/**
 * Reads riskgate's own audit lines back into requests. A line has no token, so identity is
 * not re-verified: the recorded caller (tier, entitlements, amr/acr, auth_time, pseudonymised
 * subject and org) is handed to the policy as verified claims at the policy's claim paths, and
 * a recorded identity failure is answered again. Headers are rebuilt from what the line keeps:
 * the user agent from its class, the device id (pseudonymised) in the policy's device header,
 * the declared size. The route the line names is pinned with the `riskgate_route` extension,
 * as the path may have been masked; a policy without that route matches the path instead.
 */
export function createAuditReader(policy: Policy): (line: Record<string, unknown>) => AuditReplay {
  const paths = policy.doc.identity.claims;
  const device = policy.doc.signals.device;
  return (line) => {
    const time = typeof line.received_at === "string" ? Date.parse(line.received_at) : Number.NaN;
    if (!Number.isFinite(time)) {
      throw new RiskgateError(
        "RISKGATE_REPLAY_INPUT_INVALID",
        "audit line has no received_at (written by a riskgate older than replay support?)",
      );
    }
    const headers = new Map<string, string>();
    const ua = userAgentOfClass(text(line.ua_class));
    if (ua !== undefined) headers.set("user-agent", ua);
    const deviceId = text(line.device);
    if (deviceId !== "" && device.enabled) headers.set(device.header, deviceId);
    const route = text(line.route);
    const req: AccessRequest = {
      id: text(line.request_id),
      method: text(line.method) || "GET",
      host: text(line.host),
      path: text(line.path) || "/",
      query: "",
      headers,
      clientIp: text(line.client_ip),
      size: typeof line.size === "number" ? line.size : -1,
      principal: "",
      sni: "",
      contextExtensions: route === "" ? {} : { [ROUTE_EXTENSION_KEY]: route },
      metadata: {},
      receivedAt: time,
    };
    const outcome = identityOf(line, paths);
    const identifier: Identifier = {
      identify: () => Promise.resolve(outcome),
      ready: () => Promise.resolve(),
      stats: () => ({ verifications: 0, cacheHits: 0, failures: 0 }),
    };
    return { req, identifier };
  };
}

function identityOf(
  line: Record<string, unknown>,
  paths: Policy["doc"]["identity"]["claims"],
): IdentityOutcome {
  const caller = line.caller;
  if (caller !== null && typeof caller === "object" && !Array.isArray(caller)) {
    const c = caller as Record<string, unknown>;
    if (c.anonymous === true) return { kind: "anonymous" };
    const claims: Record<string, unknown> = {};
    setAt(claims, paths.subject, text(line.subject));
    if (text(line.org) !== "") setAt(claims, paths.org, text(line.org));
    if (text(c.tier) !== "") setAt(claims, paths.tier, text(c.tier));
    setAt(claims, paths.entitlements, strings(c.entitlements));
    setAt(claims, paths.amr, strings(c.amr));
    if (text(c.acr) !== "") setAt(claims, paths.acr, text(c.acr));
    if (typeof c.auth_time === "number") setAt(claims, paths.auth_time, c.auth_time);
    const who = Object.freeze(callerFromClaims(claims, paths));
    return { kind: "verified", caller: who, claims, cached: true, ...sourceOf(line) };
  }
  // no caller: identity refused it, or never ran (a public route, an unmatched one)
  const reasons = Array.isArray(line.reasons) ? line.reasons : [];
  for (const r of reasons) {
    const code = text((r as { code?: unknown } | null)?.code);
    if (code === "identity.missing") return { kind: "anonymous" };
    if (code.startsWith("identity.")) {
      return { kind: "invalid", reason: code as ReasonCode, detail: "as recorded" };
    }
  }
  return { kind: "anonymous" };
}

/**
 * Where the recorded caller came from: its identity source as the line names it (`jwt` and
 * older lines without one replay as a bearer token). Mesh peers and API keys replay as the
 * machines they are by default.
 */
function sourceOf(line: Record<string, unknown>): Pick<SourceVerified, "source" | "clientClass"> {
  const named = text(line.identity_source);
  if (named === "mtls" || named === "api_key") return { source: named, clientClass: "machine" };
  if (named === "jwt_authn" || named === "introspection") return { source: named };
  return { source: "bearer" };
}

/** Sets a dot-separated claim path (as the policy's claim paths read them). */
function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = target;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (next === null || typeof next !== "object") cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}
