import { createHash } from "node:crypto";
import { z } from "zod";
import { parseCidr } from "../../geo/ip-address.js";
import { createIpList, type IpList } from "../../geo/ip-list.js";
import type { LineResult, ListFormat } from "../../geo/list-file-watcher.js";

/**
 * One line of an API key file: a JSON object naming the key by its SHA-256 (hex), never the
 * key itself, and the caller it identifies.
 */
const keyLine = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits"),
  /** A public label for logs and audit (the key's first characters, a name); never the key. */
  id: z.string().min(1).max(64).optional(),
  subject: z.string().min(1),
  org: z.string().default(""),
  tier: z.string().min(1),
  entitlements: z.array(z.string().min(1)).default([]),
  /** RFC 3339 time after which the key is refused (`identity.expired_key`). */
  expires: z.iso.datetime({ offset: true }).optional(),
  /** Addresses or CIDR blocks the key may be used from (`identity.key_network`). */
  networks: z.array(z.string().min(1)).optional(),
  /** A revoked key stays listed so that it is refused as revoked, not unknown. */
  revoked: z.boolean().default(false),
  /** API keys are machines unless the entry says otherwise. */
  client_class: z.enum(["machine", "browser", "unknown"]).default("machine"),
});

/** A key as held in memory: its digest and the caller it identifies. */
export interface ApiKeyEntry {
  readonly digest: Buffer;
  readonly id: string;
  readonly subject: string;
  readonly org: string;
  readonly tier: string;
  readonly entitlements: readonly string[];
  /** ms since epoch; absent: never expires. */
  readonly expiresAt?: number;
  readonly networks?: IpList;
  readonly revoked: boolean;
  readonly clientClass: "machine" | "browser" | "unknown";
}

/** The keys of one file, looked up by the SHA-256 of the key presented. */
export interface ApiKeyTable {
  readonly size: number;
  find(digestHex: string): ApiKeyEntry | undefined;
}

/** The SHA-256 of a key, as the key file lists it. */
export function keyDigest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

function readKeyLine(line: string): LineResult<ApiKeyEntry> {
  const text = line.trim();
  if (text === "" || text.startsWith("#")) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: "not a JSON object" };
  }
  const parsed = keyLine.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `${issue?.path.join(".") || "line"}: ${issue?.message ?? "invalid"}` };
  }
  const k = parsed.data;
  const ranges = [];
  for (const cidr of k.networks ?? []) {
    const range = parseCidr(cidr);
    if (typeof range === "string") return { error: `networks: ${range}` };
    ranges.push(range);
  }
  return {
    entry: Object.freeze({
      digest: Buffer.from(k.sha256, "hex"),
      id: k.id ?? `${k.sha256.slice(0, 8)}…`,
      subject: k.subject,
      org: k.org,
      tier: k.tier,
      entitlements: Object.freeze([...k.entitlements]),
      ...(k.expires === undefined ? {} : { expiresAt: Date.parse(k.expires) }),
      ...(k.networks === undefined ? {} : { networks: createIpList(ranges, "api key networks") }),
      revoked: k.revoked,
      clientClass: k.client_class,
    }),
  };
}

/** The API key file format: one JSON object per line, `#` comment lines. */
export const API_KEY_FORMAT: ListFormat<ApiKeyEntry, ApiKeyTable> = {
  readLine: readKeyLine,
  build(entries) {
    const byDigest = new Map<string, ApiKeyEntry>();
    for (const e of entries) byDigest.set(e.digest.toString("hex"), e);
    return Object.freeze({ size: byDigest.size, find: (hex: string) => byDigest.get(hex) });
  },
};
