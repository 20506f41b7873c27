import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { signalStatus } from "../../src/access/signals/signal-status.js";

const run = promisify(execFile);
const MINIMAL = "policies/examples/tiers-and-routes.yaml";
const minimalText = readFileSync(MINIMAL, "utf8");
const ALL_DATA = { city: true, asn: true };

const statusOf = (text: string, data = ALL_DATA) =>
  new Map(signalStatus(parsePolicy(text, "p.yaml").doc, data).map((s) => [s.path, s]));

describe("safe defaults: signals that need no site data are on", () => {
  it("turns every such signal on for a policy of tiers and routes only", () => {
    const status = statusOf(minimalText);
    for (const path of [
      "signals.velocity",
      "signals.velocity.population",
      "signals.velocity.person_ceiling",
      "signals.stuffing",
      "signals.places",
      "signals.session_binding",
      "signals.impossible_travel",
      "signals.new_country",
      "signals.usage_anomaly",
      "signals.sensitive_baseline",
      "signals.weak_auth",
      "signals.client_class",
    ]) {
      expect(status.get(path), path).toEqual({ path, on: true });
    }
  });

  it("keeps off what needs a site's data, saying what it lacks", () => {
    const status = statusOf(minimalText);
    expect(status.get("signals.hosting_asn")?.why).toMatch(/^no hosting ASN list/);
    expect(status.get("signals.device.posture")?.why).toMatch(/^no device posture header/);
    expect(status.get("signals.scoring_webhook")?.why).toMatch(/^no scoring webhook/);
    expect(status.get("signals.external_scores")?.why).toBe("no external score sources");
    expect(status.get("signals.ip_reputation")).toMatchObject({ on: true, why: /no list files/ });
  });

  it("says when the policy turned a signal off", () => {
    const status = statusOf(`${minimalText}\nsignals:\n  places: { enabled: false }\n`);
    expect(status.get("signals.places")).toEqual({
      path: "signals.places",
      on: false,
      why: "turned off by the policy",
    });
  });

  it("says which signals idle without city or ASN data", () => {
    const production = readFileSync("policies/production.yaml", "utf8");
    const status = statusOf(production, { city: false, asn: false });
    expect(status.get("signals.hosting_asn")?.why).toMatch(/no ASN data/);
    expect(status.get("signals.new_country")?.why).toMatch(/no city data/);
  });

  it("`riskgate policy validate` prints them (built CLI)", async () => {
    const { stdout } = await run(
      process.execPath,
      ["dist/src/cli/main.js", "policy", "validate", MINIMAL],
      { env: { ...process.env, RISKGATE_GEO: "off" } },
    );
    expect(stdout).toMatch(/tiers-and-routes\.yaml: valid .*3 tiers, 6 routes/);
    const [on, off] = stdout.split("signals off:\n") as [string, string];
    expect(on).toContain("  signals.sensitive_baseline\n");
    expect(on).toContain("  signals.stuffing\n");
    expect(on).toContain("  signals.new_country (idle: no city data (RISKGATE_GEO))\n");
    expect(off).toContain(
      "  signals.hosting_asn (no hosting ASN list (signals.hosting_asn.file))\n",
    );
    expect(off).toContain(
      "  signals.device.posture (no device posture header (signals.device.posture_header))\n",
    );
  });
});
