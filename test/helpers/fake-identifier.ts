import type { Identifier, IdentityOutcome } from "../../src/access/identity.js";

/**
 * A fake of our own identity port for pipeline unit tests: `Bearer NAME` answers the outcome
 * registered under NAME (claims given directly), anything else is a bad signature. Real JWT
 * verification is tested in identity.test.ts and over the wire in the integration tests.
 */
export function fakeIdentifier(
  tokens: Record<string, Record<string, unknown> | IdentityOutcome>,
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
        return Promise.resolve(entry as IdentityOutcome);
      }
      return Promise.resolve({ kind: "verified", claims: entry, source: "bearer", cached: false });
    },
    ready: () => Promise.resolve(),
    stats: () => ({ verifications, cacheHits: 0, failures: 0 }),
  };
}
