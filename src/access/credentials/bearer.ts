import type { AccessRequest } from "../request.js";
import { type Credential, MAX_TOKEN_BYTES, TOO_LARGE } from "./credential.js";

const BEARER = /^\s*bearer\s+(\S+)\s*$/i;

/**
 * The token of an `Authorization: Bearer <jwt>` header (or the header the policy names). Any
 * other value of that header is an unusable credential, not an anonymous request.
 */
export function bearerCredential(req: AccessRequest, header: string): Credential | undefined {
  const value = req.headers.get(header);
  if (value === undefined || value === "") return undefined;
  // the length check first: the pattern never runs over an arbitrarily long header
  if (value.length > MAX_TOKEN_BYTES + 64) return TOO_LARGE;
  const m = BEARER.exec(value);
  if (m === null) {
    return {
      kind: "unusable",
      reason: "identity.malformed",
      detail: `${header} is not a Bearer credential`,
    };
  }
  return { kind: "token", source: "bearer", token: m[1] as string };
}
