import type { CredentialSource } from "../credentials/credential.js";
import type { Caller } from "../license.js";
import type { ReasonCode } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import type { ResolvedRoute } from "../routes.js";
import type { ClientClass } from "../signals/signal.js";

/** How a caller was identified, as audit lines, spans and replay name it. */
export type IdentityMethod = "jwt" | "jwt_authn" | "mtls" | "api_key" | "introspection";

/** The identity method a credential source belongs to (a bearer header and a cookie carry JWTs). */
export function identityMethodOf(source: CredentialSource): IdentityMethod {
  return source === "bearer" || source === "cookie" ? "jwt" : source;
}

/** A caller one source identified (frozen). */
export type SourceVerified = {
  readonly kind: "verified";
  /** The caller read from the credential (frozen). */
  readonly caller: Caller;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly source: CredentialSource;
  readonly cached: boolean;
  /** The client class the source itself establishes (a mesh peer, an API key); absent: read it from the claims. */
  readonly clientClass?: ClientClass;
  /** The mesh peer that carried the request, when the route asked for it beside a user token. */
  readonly peer?: string;
};

/** A credential that is there and refused. `detail` never holds the credential. */
export type SourceRefusal = {
  readonly kind: "invalid";
  readonly reason: ReasonCode;
  readonly detail: string;
  /** The source that refused, when it is one of the non-JWT sources (for audit and spans). */
  readonly method?: IdentityMethod;
};

export type SourceOutcome = SourceVerified | SourceRefusal;

/**
 * One way of identifying a caller (a JWT, Envoy's jwt_authn payload, a mesh peer, an API key,
 * an opaque token). A source that finds no credential of its kind answers undefined, and the
 * next source is asked; otherwise it answers the caller or a typed refusal. Never throws.
 */
export interface IdentitySource {
  readonly method: IdentityMethod;
  identify(
    req: AccessRequest,
    nowMs: number,
    route: ResolvedRoute | undefined,
  ): SourceOutcome | Promise<SourceOutcome> | undefined;
  /** Resolves when the source can answer (its keys fetched). */
  ready?(): Promise<void>;
}
