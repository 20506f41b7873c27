/** Where a credential was found (a JWT's header or cookie, or the identity source itself). */
export type CredentialSource =
  | "bearer"
  | "cookie"
  | "jwt_authn"
  | "mtls"
  | "api_key"
  | "introspection";

/**
 * What one credential source found in a request: a token to verify, claims a trusted proxy
 * already verified (Envoy's jwt_authn), or a credential that is there but unusable. A source
 * that finds nothing returns undefined, and the next source is asked.
 */
export type Credential =
  | { readonly kind: "token"; readonly source: "bearer" | "cookie"; readonly token: string }
  | { readonly kind: "claims"; readonly source: "jwt_authn"; readonly claims: object }
  | {
      readonly kind: "unusable";
      readonly reason: "identity.malformed" | "identity.claims_invalid";
      /** Never holds the credential itself. */
      readonly detail: string;
    };

/** Tokens longer than this (in characters; a JWT is ASCII) are refused unparsed. */
export const MAX_TOKEN_BYTES = 8 * 1024;

export const TOO_LARGE_DETAIL = "token larger than 8 KiB";

export const TOO_LARGE: Credential = Object.freeze({
  kind: "unusable",
  reason: "identity.malformed",
  detail: TOO_LARGE_DETAIL,
});
