import { refuseAmbiguousPath } from "../ambiguous-path.js";
import { failureModeOf, failureVerdict } from "../failure.js";
import type { IdentityOutcome } from "../identity.js";
import { identityMethodOf } from "../identity-sources/identity-source.js";
import { anonymousCaller, type Caller } from "../license.js";
import type { StageTimings } from "../pipeline.js";
import { type CheckRun, deny, Ended, ends, next, type Phase, type PhaseResult } from "./phase.js";

/** Who is calling, as the identify phase found out. */
export interface Identified {
  readonly caller: Caller;
  readonly identity: IdentityOutcome;
}

/**
 * Identify: an unmatched route under `default_route: deny` and a route that needs no
 * credential end here; otherwise the credential is verified (or the caller is anonymous on a
 * route that allows it), and the caller is read from its claims.
 */
export const identify: Phase<undefined, Identified> = {
  name: "identify",
  async run(check) {
    const { snapshot, req, route, trace, timings } = check;
    const doc = snapshot.policy.doc;
    const base = { requestId: req.id, score: 0, reasons: [], route: route.name };
    const ambiguous = refuseAmbiguousPath(doc, req, base);
    if (ambiguous !== undefined) return ends(ambiguous);
    if (route.rule === undefined && doc.default_route.action === "deny") {
      return deny(base, "license", { code: "license.route_unmatched", points: 0 });
    }
    if (route.auth === "none") return ends({ ...base, kind: "allow" });

    const start = performance.now();
    const identity = await snapshot.identifier.identify(req, req.receivedAt, route);
    timings.identify = { start, end: performance.now(), ...identityFacts(identity) };
    const caller = callerOf(check, identity);
    if (caller instanceof Ended) {
      trace?.identity?.(identity, undefined);
      return caller;
    }
    check.learned.caller = caller;
    trace?.identity?.(identity, caller);
    return next({ caller, identity });
  },
};

/** The caller of a verified token, the anonymous caller where the route allows one, or a deny. */
function callerOf(check: CheckRun, identity: IdentityOutcome): PhaseResult<Caller> {
  const { req, route } = check;
  const doc = check.snapshot.policy.doc;
  const base = { requestId: req.id, score: 0, reasons: [], route: route.name };
  if (identity.kind === "invalid" && identity.reason === "identity.introspection_unavailable") {
    // the issuer is down, not the caller wrong: the route's failure mode decides, as for state
    const reason = { code: identity.reason, points: 0, detail: identity.detail };
    const mode = failureModeOf(check.snapshot.policy, undefined, route);
    return ends(failureVerdict(mode, req, { ...base, reasons: [reason] }));
  }
  if (identity.kind === "invalid") {
    return deny(base, "authentication", {
      code: identity.reason,
      points: 0,
      detail: identity.detail,
    });
  }
  if (identity.kind === "anonymous") {
    if (route.auth !== "optional" || doc.anonymous_tier === undefined) {
      return deny(base, "authentication", { code: "identity.missing", points: 0 });
    }
    return next(anonymousCaller(doc.anonymous_tier, req.clientIp));
  }
  // read from the claims by the identifier, and cached with the verified token
  return next(identity.caller);
}

/** What telemetry records of the outcome: the source, never the credential. */
function identityFacts(identity: IdentityOutcome): Partial<NonNullable<StageTimings["identify"]>> {
  if (identity.kind === "invalid")
    return identity.method === undefined ? {} : { method: identity.method };
  if (identity.kind !== "verified") return {};
  return {
    source: identity.source,
    cached: identity.cached,
    method: identityMethodOf(identity.source),
    ...(identity.peer === undefined ? {} : { peer: identity.peer }),
  };
}
