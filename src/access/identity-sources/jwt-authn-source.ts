import { jwtAuthnCredential } from "../credentials/jwt-authn.js";
import type { Caller } from "../license.js";
import type { PolicyDocument } from "../policy.js";
import { checkTimes } from "../token-verifier.js";
import type { IdentitySource } from "./identity-source.js";

/**
 * The payload Envoy's jwt_authn filter verified (signature, issuer, audience); riskgate
 * re-checks the times on its own clock and reads the caller through the same claim paths.
 */
export function createJwtAuthnSource(
  deps: { callerOf: (claims: Readonly<Record<string, unknown>>) => Caller | undefined },
  options: PolicyDocument["identity"],
): IdentitySource {
  const skew = options.clock_skew_seconds;
  const maxLifetime = options.max_token_lifetime_seconds;
  return {
    method: "jwt_authn",
    identify(req, nowMs) {
      const found = jwtAuthnCredential(req, options.sources.jwt_authn);
      if (found === undefined) return undefined;
      if (found.kind === "unusable") {
        return { kind: "invalid", reason: found.reason, detail: found.detail };
      }
      if (found.kind !== "claims") return undefined;
      const claims = found.claims as Readonly<Record<string, unknown>>;
      // a payload without exp is Envoy's to allow (jwt_authn accepts it); with exp, the same rules
      if (typeof claims.exp === "number") {
        const times = checkTimes(claims, nowMs, skew, maxLifetime);
        if (times !== undefined) {
          return {
            kind: "invalid",
            reason: times.reason,
            detail: `jwt_authn payload: ${times.detail}`,
          };
        }
      }
      const caller = deps.callerOf(claims);
      if (caller === undefined) {
        return { kind: "invalid", reason: "identity.claims_invalid", detail: "no subject" };
      }
      return { kind: "verified", caller, claims, source: "jwt_authn", cached: false };
    },
  };
}
