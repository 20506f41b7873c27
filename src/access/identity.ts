import { deepFreeze } from "../deep-freeze.js";
import type { CredentialSource } from "./credentials/credential.js";
import type {
  IdentitySource as Source,
  SourceVerified,
} from "./identity-sources/identity-source.js";
import { createJwtAuthnSource } from "./identity-sources/jwt-authn-source.js";
import { createJwtSource } from "./identity-sources/jwt-source.js";
import type { KeySource } from "./key-source.js";
import { type Caller, callerFromClaims } from "./license.js";
import type { PolicyDocument } from "./policy.js";
import type { ReasonCode } from "./reasons.js";
import type { AccessRequest } from "./request.js";
import type { ResolvedRoute } from "./routes.js";

export type IdentitySource = CredentialSource;

/** The identify stage's result. `detail` never contains the credential. */
export type IdentityOutcome =
  | { readonly kind: "anonymous" }
  | SourceVerified
  | { readonly kind: "invalid"; readonly reason: ReasonCode; readonly detail: string };

export interface IdentityStats {
  /** Signature verifications performed (cache misses that reached jose). */
  verifications: number;
  cacheHits: number;
  failures: number;
}

export interface Identifier {
  /** Identifies the caller of one request (on `route`, when known). Never rejects. */
  identify(req: AccessRequest, nowMs: number, route?: ResolvedRoute): Promise<IdentityOutcome>;
  /** Resolves when the key source has keys (health turns SERVING after it). */
  ready(): Promise<void>;
  stats(): IdentityStats;
}

export interface IdentifierDeps {
  keys: KeySource | undefined;
  /** Called after each signature verification (cache misses only): verified or refused. */
  onVerification?: (ok: boolean) => void;
}

/**
 * The identify stage: asks its identity sources in turn (identity-sources/: a JWT from the
 * bearer header or the cookie, Envoy's jwt_authn payload); the first that finds a credential of
 * its kind answers, with the caller or a typed refusal. No credential at all is anonymous.
 */
export function createIdentifier(
  deps: IdentifierDeps,
  options: PolicyDocument["identity"],
): Identifier {
  const callerOf = (claims: Readonly<Record<string, unknown>>): Caller | undefined => {
    const caller = callerFromClaims(claims, options.claims);
    return caller.subject === "" ? undefined : deepFreeze(caller);
  };
  const jwt = createJwtSource({ ...deps, callerOf }, options);
  const sources: readonly Source[] = [jwt, createJwtAuthnSource({ callerOf }, options)];
  let failures = 0;
  const counted = (outcome: IdentityOutcome): IdentityOutcome => {
    if (outcome.kind === "invalid") failures++;
    return outcome;
  };

  return {
    identify(req, nowMs, route) {
      try {
        for (const source of sources) {
          const found = source.identify(req, nowMs, route);
          if (found === undefined) continue;
          return found instanceof Promise ? found.then(counted) : Promise.resolve(counted(found));
        }
        return Promise.resolve({ kind: "anonymous" });
      } catch {
        // unreachable by design; the stage still never throws
        return Promise.resolve(
          counted({
            kind: "invalid",
            reason: "identity.malformed",
            detail: "unreadable credential",
          }),
        );
      }
    },
    ready: async () => {
      await Promise.all(sources.map((s) => s.ready?.()));
    },
    stats: () => ({ ...jwt.counts, failures }),
  };
}
