import { cookieValue } from "../cookies.js";
import type { AccessRequest } from "../request.js";
import type { Credential } from "./credential.js";

/** The raw JWT in cookie `name`, when the policy names a cookie and the request carries it. */
export function cookieCredential(
  req: AccessRequest,
  name: string | undefined,
): Credential | undefined {
  if (name === undefined) return undefined;
  const value = cookieValue(req.headers.get("cookie"), name);
  if (value === undefined || value === "") return undefined;
  return { kind: "token", source: "cookie", token: value };
}
