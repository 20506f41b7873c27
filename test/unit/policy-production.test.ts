import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadPolicyFile } from "../../src/access/policy.js";

const run = promisify(execFile);
const FILE = "policies/production.yaml";

describe("policies/production.yaml", () => {
  it("passes `riskgate policy validate`", async () => {
    const { stdout } = await run(process.execPath, [
      "dist/src/cli/main.js",
      "policy",
      "validate",
      FILE,
    ]);
    expect(stdout).toMatch(/production\.yaml: valid .*3 tiers, 6 routes, mode enforce/);
    await expect(loadPolicyFile(FILE)).resolves.toBeDefined();
  });

  it("turns every signal of the policy reference on", async () => {
    const doc = parse(await readFile(FILE, "utf8")) as {
      signals: Record<string, { enabled?: boolean }>;
    };
    for (const name of [
      "velocity",
      "weak_auth",
      "stale_auth",
      "failed_attempts",
      "geo",
      "impossible_travel",
      "new_country",
      "ip_reputation",
      "hosting_asn",
      "device",
      "usage_anomaly",
      "request_shape",
      "sensitivity",
    ]) {
      expect(doc.signals[name]?.enabled, name).toBe(true);
    }
  });
});
