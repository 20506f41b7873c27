import { parseArgs } from "node:util";
import { loadPolicyFile } from "../access/policy.js";
import { loadSettings } from "../config/settings.js";
import { loadOrCreateDevKeys, mintDevToken } from "./dev-keys.js";

/** `riskgate token --help`. */
export const HELP = `riskgate token: mint a dev JWT that riskgate serve --dev trusts

Signed by the local dev key (RISKGATE_DEV_KEYS_DIR, created on first use), with the policy's
first issuer and audience. It is a person's login session: it carries auth_time and amr.

Usage: riskgate token --sub ID [flags]

Flags:
  --sub ID              the subject (required)
  --tier T              the license tier claim
  --org O               the org claim
  --entitlements a,b    extra entitlements (add-ons) in the token
  --amr pwd,mfa         authentication methods (default pwd)
  --acr X               the acr claim
  --ttl 1h              lifetime: 90, 30s, 15m, 2h or 1d (default 1h)
  --policy FILE         the policy whose issuer and audience to use (default RISKGATE_POLICY)
  --iss ISSUER          the issuer instead of the policy's first
  --aud AUDIENCE        the audience instead of the policy's first

Example:
  T=$(riskgate token --sub alice --tier pro --org acme --amr pwd,mfa)

Exit codes:
  0  the token is printed on stdout
  2  --sub missing or a bad flag`;

/** Parses a duration like `90`, `30s`, `15m`, `2h`, `1d` into seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (m === null) throw new TypeError(`not a duration: "${text}" (use 90, 30s, 15m, 2h or 1d)`);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

const list = (s: string | undefined) =>
  s === undefined
    ? undefined
    : s
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x !== "");

/**
 * `riskgate token`: mints a dev JWT signed by the local dev key (created on first use), with
 * the policy's first issuer and audience, so `riskgate serve --dev` accepts it.
 */
export async function runToken(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      sub: { type: "string" },
      tier: { type: "string" },
      org: { type: "string" },
      entitlements: { type: "string" },
      amr: { type: "string", default: "pwd" },
      acr: { type: "string" },
      ttl: { type: "string", default: "1h" },
      policy: { type: "string" },
      iss: { type: "string" },
      aud: { type: "string" },
    },
  });
  if (values.sub === undefined) {
    process.stderr.write(
      "usage: riskgate token --sub ID [--tier T] [--org O] [--entitlements a,b] [--amr pwd,mfa] [--ttl 1h]\n",
    );
    return 2;
  }
  const settings = loadSettings(process.env);
  const policy = await loadPolicyFile(values.policy ?? settings.policyFile);
  const keys = await loadOrCreateDevKeys(settings.devKeysDir);
  const entitlements = list(values.entitlements);
  const amr = list(values.amr);
  const token = await mintDevToken(keys, {
    iss: values.iss ?? (policy.doc.identity.issuers[0] as string),
    aud: values.aud ?? (policy.doc.identity.audiences[0] as string),
    sub: values.sub,
    ttlSeconds: parseDuration(values.ttl),
    ...(values.tier === undefined ? {} : { tier: values.tier }),
    ...(values.org === undefined ? {} : { org: values.org }),
    ...(entitlements === undefined ? {} : { entitlements }),
    ...(amr === undefined ? {} : { amr }),
    ...(values.acr === undefined ? {} : { acr: values.acr }),
  });
  process.stdout.write(`${token}\n`);
  return 0;
}
