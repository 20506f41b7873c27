import { randomBytes } from "node:crypto";
import { keyDigest } from "./key-file.js";

/** What `riskgate key` makes: the key (shown once) and the key file line that admits it. */
export interface NewApiKey {
  readonly key: string;
  readonly line: string;
}

export interface NewApiKeyOptions {
  readonly subject: string;
  readonly tier: string;
  readonly org?: string;
  readonly entitlements?: readonly string[];
  /** RFC 3339 expiry. */
  readonly expires?: string;
  readonly networks?: readonly string[];
  /** Random bytes (tests pass fixed ones). */
  readonly random?: (size: number) => Buffer;
}

/**
 * A new API key: `rg_` and 32 random bytes in base64url (256 bits), and its key file line,
 * which holds the key's SHA-256 and a public label (the first characters), never the key.
 */
export function newApiKey(options: NewApiKeyOptions): NewApiKey {
  const key = `rg_${(options.random ?? randomBytes)(32).toString("base64url")}`;
  const entry = {
    sha256: keyDigest(key).toString("hex"),
    id: key.slice(0, 9),
    subject: options.subject,
    ...(options.org === undefined ? {} : { org: options.org }),
    tier: options.tier,
    ...(options.entitlements === undefined ? {} : { entitlements: options.entitlements }),
    ...(options.expires === undefined ? {} : { expires: options.expires }),
    ...(options.networks === undefined ? {} : { networks: options.networks }),
  };
  return { key, line: JSON.stringify(entry) };
}
