import { loadPolicyFile } from "../access/policy.js";
import {
  type DataAvailable,
  formatSignalStatus,
  signalStatus,
} from "../access/signals/signal-status.js";
import { loadSettings, type Settings } from "../config/settings.js";
import { PolicyError } from "../errors.js";

/** `riskgate policy --help`. */
export const HELP = `riskgate policy validate: check a policy file

Validates the file as riskgate serve would load it (schema, list files, signals' data) and
prints its version, tiers, routes and mode, then which signals are on and which are off and
why (turned off by the policy, or the site data they lack: an ASN list, a device posture
header, a webhook; RISKGATE_GEO says which geo data there will be), or every problem with its
path.

Usage: riskgate policy validate FILE

Example:
  riskgate policy validate policies/demo.yaml

Exit codes:
  0  valid
  2  invalid or unreadable (every problem printed on stderr), or no FILE`;

/** `riskgate policy validate FILE`: exit 0 when valid, 2 with every problem listed when not. */
export async function runPolicy(args: string[]): Promise<number> {
  const [sub, file] = args;
  if (sub !== "validate" || file === undefined) {
    process.stderr.write("usage: riskgate policy validate FILE\n");
    return 2;
  }
  try {
    const policy = await loadPolicyFile(file);
    const doc = policy.doc;
    process.stdout.write(
      `${file}: valid (version ${policy.version}; ${Object.keys(doc.tiers).length} tiers, ${doc.routes.length} routes, mode ${doc.mode})\n`,
    );
    process.stdout.write(formatSignalStatus(signalStatus(doc, geoData(loadSettings(process.env)))));
    return 0;
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** The geo data `serve` would have with these settings (no file is opened here). */
function geoData(settings: Settings): DataAvailable {
  if (settings.geo === "off") return { city: false, asn: false };
  if (settings.geo === "embedded") return { city: true, asn: true };
  return { city: settings.geoCityFiles !== "", asn: settings.geoAsnFiles !== "" };
}
