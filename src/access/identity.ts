import { deepFreeze } from "../deep-freeze.js";
import type { ApiKeys } from "./api-keys/key-files.js";
import type { CredentialSource } from "./credentials/credential.js";
import { createApiKeySource } from "./identity-sources/api-key-source.js";
import type {
  IdentitySource as Source,
  SourceOutcome,
  SourceRefusal,
  SourceVerified,
} from "./identity-sources/identity-source.js";
import {
  createIntrospectionSource,
  type IntrospectionDeps,
} from "./identity-sources/introspection-source.js";
import { createJwtAuthnSource } from "./identity-sources/jwt-authn-source.js";
import { createJwtSource } from "./identity-sources/jwt-source.js";
import { createMtlsSource } from "./identity-sources/mtls-source.js";
import type { KeySource } from "./key-source.js";
import { type Caller, callerFromClaims } from "./license.js";
import type { PolicyDocument } from "./policy.js";
import type { AccessRequest } from "./request.js";
import type { ResolvedRoute } from "./routes.js";
import { withClientSubject } from "./subject-fallback.js";

export type IdentitySource = CredentialSource;

/** The identify stage's result. `detail` never contains the credential. */
export type IdentityOutcome = { readonly kind: "anonymous" } | SourceVerified | SourceRefusal;

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
  /** The live keys of identity.api_keys.file (absent: no key is known). */
  apiKeys?: ApiKeys;
  /** The introspection client's secret and transport (identity.introspection). */
  introspection?: Pick<IntrospectionDeps, "clientSecret" | "fetch" | "now">;
}

/**
 * The identify stage: asks its user-credential sources in turn (identity-sources/: an API key,
 * a JWT from the bearer header or the cookie, Envoy's jwt_authn payload); the first that finds a
 * credential of its kind answers, with the caller or a typed refusal. The mesh peer
 * (identity.mtls) is asked as the route says (`routes[].peer`, see {@link withPeer}). No
 * credential at all is anonymous.
 */
export function createIdentifier(
  deps: IdentifierDeps,
  options: PolicyDocument["identity"],
): Identifier {
  const callerOf = (claims: Readonly<Record<string, unknown>>): Caller | undefined => {
    const caller = withClientSubject(
      callerFromClaims(claims, options.claims),
      claims,
      options.claims.subject_fallback,
    );
    return caller.subject === "" ? undefined : deepFreeze(caller);
  };
  const jwt = createJwtSource({ ...deps, callerOf }, options);
  const users: readonly Source[] = [
    // first: it claims only its own header, the ApiKey scheme and Bearer values that are no JWT
    ...(options.api_keys === undefined
      ? []
      : [createApiKeySource({ keys: deps.apiKeys }, options.api_keys)]),
    // before the JWT source: it claims only Bearer values that are not JWTs
    ...(options.introspection === undefined
      ? []
      : [
          createIntrospectionSource(
            { clientSecret: "", ...deps.introspection, callerOf },
            options.introspection,
          ),
        ]),
    jwt,
    createJwtAuthnSource({ callerOf }, options),
  ];
  const peers = options.mtls === undefined ? undefined : createMtlsSource(options.mtls);
  let failures = 0;
  const counted = (outcome: IdentityOutcome): IdentityOutcome => {
    if (outcome.kind === "invalid") failures++;
    return outcome;
  };
  const user = (req: AccessRequest, nowMs: number, route: ResolvedRoute | undefined) => {
    for (const source of users) {
      const found = source.identify(req, nowMs, route);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  return {
    identify(req, nowMs, route) {
      try {
        const mode = peers === undefined ? "off" : (route?.rule?.peer ?? "enough");
        const found =
          mode === "off"
            ? user(req, nowMs, route)
            : withPeer(mode, peers?.identify(req), () => user(req, nowMs, route));
        if (found === undefined) return Promise.resolve({ kind: "anonymous" });
        return found instanceof Promise ? found.then(counted) : Promise.resolve(counted(found));
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
      await Promise.all(users.map((s) => s.ready?.()));
    },
    stats: () => ({ ...jwt.counts, failures }),
  };
}

type Found = SourceOutcome | Promise<SourceOutcome> | undefined;

/**
 * The caller on a route that consults the mesh peer. `enough`: the user's credential when there
 * is one, else the mapped peer (an unmapped one is no credential). `with_token`: the mesh
 * pattern: the peer must be mapped and the user's credential valid; the user is the caller,
 * with the peer named beside it.
 */
function withPeer(
  mode: "enough" | "with_token",
  peer: SourceOutcome | undefined,
  user: () => Found,
): Found {
  if (mode === "enough") {
    const found = user();
    if (found !== undefined) return found;
    return peer?.kind === "invalid" ? undefined : peer;
  }
  if (peer === undefined) {
    return {
      kind: "invalid",
      reason: "identity.peer_missing",
      detail: "no mTLS peer identity",
      method: "mtls",
    };
  }
  if (peer.kind === "invalid") return peer;
  const found = user();
  const subject = peer.caller.subject;
  const named = (u: SourceOutcome): SourceOutcome =>
    u.kind === "verified" ? { ...u, peer: subject } : u;
  if (found === undefined) {
    return {
      kind: "invalid",
      reason: "identity.missing",
      detail: "the route needs a user credential beside the mesh peer",
    };
  }
  return found instanceof Promise ? found.then(named) : named(found);
}
