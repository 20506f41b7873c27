import { parseArgs } from "node:util";
import { newApiKey } from "../access/api-keys/new-key.js";
import { parseCidr } from "../geo/ip-address.js";
import { parseDuration } from "./token.js";

/** `riskgate key --help`. */
export const HELP = `riskgate key: create an API key and the key file line that admits it

Prints the new key (give it to the client once; riskgate never stores it) and, on the next
line, the JSON line to add to the policy's identity.api_keys.file. The line holds the key's
SHA-256 and a public label (its first characters), never the key. riskgate reloads the file
when it changes; revoke a key by setting "revoked": true on its line.

Usage: riskgate key --sub ID --tier T [flags]

Flags:
  --sub ID              the caller's subject (required)
  --tier T              the caller's tier (required)
  --org O               the caller's org
  --entitlements a,b    entitlements beyond the tier's
  --expires 90d         lifetime (30s, 15m, 2h, 90d) or an RFC 3339 time; default: never
  --networks a,b        addresses or CIDR blocks the key may be used from; default: any

Example:
  riskgate key --sub acme-sync --tier pro --org acme --expires 365d --networks 192.0.2.0/24

Exit codes:
  0  the key and its line are printed on stdout
  2  --sub or --tier missing, or a bad flag`;

const list = (s: string | undefined) =>
  s
    ?.split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");

/** `riskgate key`: creates an API key and prints it with its key file line. */
export function runKey(args: string[], now: () => number = Date.now): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      sub: { type: "string" },
      tier: { type: "string" },
      org: { type: "string" },
      entitlements: { type: "string" },
      expires: { type: "string" },
      networks: { type: "string" },
    },
  });
  const fail = (why: string) => {
    process.stderr.write(`riskgate key: ${why}\nusage: riskgate key --sub ID --tier T [flags]\n`);
    return Promise.resolve(2);
  };
  if (values.sub === undefined || values.tier === undefined)
    return fail("--sub and --tier are required");
  const networks = list(values.networks);
  const bad = networks?.map(parseCidr).find((r) => typeof r === "string");
  if (bad !== undefined) return fail(`--networks: ${bad}`);
  let expires: string | undefined;
  if (values.expires !== undefined) {
    const at = /^\d+\s*[smhd]?$/.test(values.expires)
      ? now() + parseDuration(values.expires) * 1000
      : Date.parse(values.expires);
    if (!Number.isFinite(at)) return fail(`--expires: not a duration or an RFC 3339 time`);
    expires = new Date(at).toISOString();
  }
  const entitlements = list(values.entitlements);
  const made = newApiKey({
    subject: values.sub,
    tier: values.tier,
    ...(values.org === undefined ? {} : { org: values.org }),
    ...(entitlements === undefined ? {} : { entitlements }),
    ...(expires === undefined ? {} : { expires }),
    ...(networks === undefined ? {} : { networks }),
  });
  process.stdout.write(`${made.key}\n${made.line}\n`);
  return Promise.resolve(0);
}
