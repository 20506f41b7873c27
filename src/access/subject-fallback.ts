import { type Caller, claimAt } from "./license.js";

/**
 * The caller of a token that names no subject, named by its OAuth client instead: PingOne's
 * client-credentials tokens carry no `sub` at all, only `client_id`. Only a token without a
 * `sub` claim falls back (a person's token always has one, so a missing custom subject claim on
 * it stays a refusal); `paths` are tried in order (`identity.claims.subject_fallback`, default
 * `[client_id]`, `[]` turns it off). The caller is returned as it was otherwise.
 */
export function withClientSubject(
  caller: Caller,
  claims: Readonly<Record<string, unknown>>,
  paths: readonly string[],
): Caller {
  if (caller.subject !== "" || claims.sub !== undefined) return caller;
  for (const path of paths) {
    const client = claimAt(claims, path);
    if (typeof client === "string" && client !== "") return { ...caller, subject: client };
  }
  return caller;
}
