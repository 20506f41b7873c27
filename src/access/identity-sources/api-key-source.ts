import { timingSafeEqual } from "node:crypto";
import type { ApiKeysPolicy } from "../../config/policy-identity.js";
import type { ApiKeyEntry } from "../api-keys/key-file.js";
import { keyDigest } from "../api-keys/key-file.js";
import type { ApiKeys } from "../api-keys/key-files.js";
import type { Caller } from "../license.js";
import type { AccessRequest } from "../request.js";
import type { IdentitySource, SourceOutcome, SourceRefusal } from "./identity-source.js";

/** Longer than any key riskgate issues or a vendor's; refused unread. */
const MAX_KEY_CHARS = 512;
const APIKEY_SCHEME = /^\s*apikey\s+(\S+)\s*$/i;
const BEARER_SCHEME = /^\s*bearer\s+(\S+)\s*$/i;
/** What a missing key is compared with, so an unknown key costs what a known one does. */
const NO_DIGEST = Buffer.alloc(32);

type Place = ApiKeysPolicy["from"][number];

/**
 * API keys: taken from the places the route allows (the named header, `Authorization: ApiKey`,
 * or a `Bearer` value that is not a JWT), looked up by SHA-256 in the policy's key file and
 * compared in constant time. Refusals name the key's public label at most, never the key.
 */
export function createApiKeySource(
  deps: { keys: ApiKeys | undefined },
  options: ApiKeysPolicy,
): IdentitySource {
  const outcomes = new WeakMap<ApiKeyEntry, SourceOutcome>();
  const refuse = (reason: SourceRefusal["reason"], detail: string): SourceRefusal => ({
    kind: "invalid",
    reason,
    detail,
    method: "api_key",
  });
  return {
    method: "api_key",
    identify(req, nowMs, route) {
      const key = keyOf(req, route?.rule?.api_key ?? options.from, options.header);
      if (key === undefined) return undefined;
      if (key.length > MAX_KEY_CHARS) return refuse("identity.malformed", "api key too long");
      const digest = keyDigest(key);
      const entry = deps.keys?.current().find(digest.toString("hex"));
      const same = timingSafeEqual(entry?.digest ?? NO_DIGEST, digest);
      if (entry === undefined || !same) return refuse("identity.unknown_key", "unknown api key");
      if (entry.revoked) return refuse("identity.revoked_key", `api key ${entry.id}`);
      if (entry.expiresAt !== undefined && nowMs >= entry.expiresAt) {
        return refuse("identity.expired_key", `api key ${entry.id}`);
      }
      if (entry.networks !== undefined && !entry.networks.has(req.clientIp)) {
        return refuse("identity.key_network", `api key ${entry.id} from ${req.clientIp || "?"}`);
      }
      let outcome = outcomes.get(entry);
      if (outcome === undefined) {
        outcome = verifiedOf(entry);
        outcomes.set(entry, outcome);
      }
      return outcome;
    },
  };
}

/** The key the request carries in one of `places`, first found wins. */
function keyOf(req: AccessRequest, places: readonly Place[], header: string): string | undefined {
  for (const place of places) {
    if (place === "header") {
      const value = req.headers.get(header)?.trim();
      if (value) return value;
      continue;
    }
    const auth = req.headers.get("authorization");
    if (auth === undefined || auth.length > MAX_KEY_CHARS + 16) continue;
    const m = (place === "apikey" ? APIKEY_SCHEME : BEARER_SCHEME).exec(auth);
    // a Bearer value shaped like a JWT is the JWT source's
    if (m !== null && (place === "apikey" || !(m[1] as string).includes("."))) return m[1];
  }
  return undefined;
}

function verifiedOf(entry: ApiKeyEntry): SourceOutcome {
  const caller: Caller = Object.freeze({
    subject: entry.subject,
    org: entry.org,
    tier: entry.tier,
    entitlements: entry.entitlements,
    amr: Object.freeze([]),
    acr: "",
    anonymous: false,
  });
  return Object.freeze({
    kind: "verified",
    caller,
    claims: Object.freeze({ key_id: entry.id }),
    source: "api_key",
    cached: false,
    clientClass: entry.clientClass,
  });
}
