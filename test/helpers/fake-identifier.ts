import type { Identifier, IdentityOutcome } from "../../src/access/identity.js";
import { callerFromClaims } from "../../src/access/license.js";
import type { PolicyDocument } from "../../src/access/policy.js";

/**
 * A fake of our own identity port for pipeline unit tests: `Bearer NAME` answers the outcome
 * registered under NAME (claims given directly, read through `paths`, the default claim paths
 * unless given), anything else is a bad signature. Real JWT
 * verification is tested in identity.test.ts and over the wire in the integration tests.
 */
export function fakeIdentifier(
  tokens: Record<string, Record<string, unknown> | IdentityOutcome>,
  paths: PolicyDocument["identity"]["claims"] = DEFAULT_PATHS,
): Identifier {
  let verifications = 0;
  return {
    identify(req) {
      const header = req.headers.get("authorization");
      if (header === undefined) return Promise.resolve({ kind: "anonymous" });
      const name = header.replace(/^Bearer\s+/i, "");
      const entry = tokens[name];
      verifications++;
      if (entry === undefined) {
        return Promise.resolve({ kind: "invalid", reason: "identity.bad_signature", detail: "" });
      }
      if ("kind" in entry && typeof entry.kind === "string") {
        const outcome = entry as IdentityOutcome;
        // a verified outcome given without its caller gets the one its claims name
        if (outcome.kind === "verified" && outcome.caller === undefined) {
          return Promise.resolve({ ...outcome, caller: callerFromClaims(outcome.claims, paths) });
        }
        return Promise.resolve(outcome);
      }
      const caller = callerFromClaims(entry, paths);
      if (caller.subject === "") {
        return Promise.resolve({
          kind: "invalid",
          reason: "identity.claims_invalid",
          detail: "no subject",
        });
      }
      return Promise.resolve({
        kind: "verified",
        caller,
        claims: entry,
        source: "bearer",
        cached: false,
      });
    },
    ready: () => Promise.resolve(),
    stats: () => ({ verifications, cacheHits: 0, failures: 0 }),
  };
}

const DEFAULT_PATHS: PolicyDocument["identity"]["claims"] = {
  subject: "sub",
  subject_fallback: ["client_id"],
  org: "org",
  tier: "tier",
  entitlements: "entitlements",
  amr: "amr",
  acr: "acr",
  auth_time: "auth_time",
};
