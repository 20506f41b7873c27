import type { AccessRequest } from "../request.js";
import type { Credential } from "./credential.js";

/**
 * The payload Envoy's jwt_authn filter verified and put into the dynamic metadata
 * (`payload_in_metadata`), read from `namespace`/`key`. Envoy checked signature, issuer and
 * audience; the identify stage re-checks the times on riskgate's own clock.
 */
export function jwtAuthnCredential(
  req: AccessRequest,
  options: { readonly enabled: boolean; readonly namespace: string; readonly key: string },
): Credential | undefined {
  if (!options.enabled) return undefined;
  const payload = req.metadata[options.namespace]?.[options.key];
  if (payload === undefined) return undefined;
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    return {
      kind: "unusable",
      reason: "identity.claims_invalid",
      detail: "jwt_authn payload is not an object",
    };
  }
  return { kind: "claims", source: "jwt_authn", claims: payload };
}
