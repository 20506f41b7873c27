import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadPolicyFile, parsePolicy } from "../../src/access/policy.js";
import { PolicyError } from "../../src/errors.js";

const demo = readFileSync("policies/demo.yaml", "utf8");

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parsePolicy(text, "test.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return [...(err as PolicyError).issues];
  }
  throw new Error("expected the policy to be rejected");
}

const minimal = `
version: 1
identity: { issuers: [i], audiences: [a] }
tiers: { free: {} }
`;

describe("policy loading", () => {
  it("accepts the demo policy and freezes it", () => {
    const policy = parsePolicy(demo, "policies/demo.yaml");
    expect(Object.keys(policy.doc.tiers)).toEqual(["free", "pro", "enterprise"]);
    expect(policy.doc.routes.map((r) => r.name)).toContain("admin-users");
    expect(policy.version).toMatch(/^[0-9a-f]{12}$/);
    expect(Object.isFrozen(policy.doc.tiers.free)).toBe(true);
    expect(() => {
      (policy.doc as { mode: string }).mode = "shadow";
    }).toThrow(TypeError);
  });

  it("fills safe defaults for a minimal policy", () => {
    const { doc } = parsePolicy(minimal, "min.yaml");
    expect(doc.mode).toBe("enforce");
    expect(doc.failure).toEqual({ mode: "closed", budget_ms: 100, on_internal_error: "deny" });
    expect(doc.default_route.action).toBe("deny");
    expect(doc.identity.algorithms).not.toContain("none");
    expect(doc.identity.sources.header).toBe("authorization");
  });

  it("rejects unknown keys with their path", () => {
    const issues = issuesOf(`${minimal}\nsignals: { velocity: { enabeld: true } }\n`);
    expect(issues).toContainEqual({
      path: "signals.velocity",
      message: "unknown key(s): enabeld",
    });
  });

  it("rejects alg none and HS256 in the allowed algorithms", () => {
    const issues = issuesOf(
      minimal.replace("audiences: [a]", "audiences: [a], algorithms: [none, HS256]"),
    );
    expect(issues.map((i) => i.path)).toEqual(["identity.algorithms[0]", "identity.algorithms[1]"]);
  });

  it("names every problem: thresholds, unknown tiers, duplicate routes, bad regex", () => {
    const issues = issuesOf(`
version: 1
identity: { issuers: [i], audiences: [a] }
tiers:
  free: { risk: { challenge_at: 90, deny_at: 50 }, downgrade_to: nosuch }
routes:
  - { name: a, match: { path: { pattern: "([" } } }
`);
    expect(issues.map((i) => i.path)).toEqual(["tiers.free.risk", "routes[0].match.path.pattern"]);
    const cross = issuesOf(`
version: 1
identity: { issuers: [i], audiences: [a] }
tiers: { free: { downgrade_to: nosuch } }
routes:
  - { name: a, tiers: [gold] }
  - { name: a, auth: optional }
`);
    expect(cross).toEqual([
      { path: "tiers.free.downgrade_to", message: 'names unknown tier "nosuch"' },
      { path: "routes[0].tiers", message: 'unknown tier "gold"' },
      { path: "routes[1].name", message: 'duplicate route name "a"' },
      { path: "routes[1].auth", message: "auth: optional needs anonymous_tier to be set" },
    ]);
  });

  it("reports YAML syntax errors and duplicate keys as unreadable", () => {
    for (const text of ["version: 1\n  bad: [", "version: 1\nversion: 1\n"]) {
      try {
        parsePolicy(text, "broken.yaml");
        expect.unreachable();
      } catch (err) {
        expect((err as PolicyError).code).toBe("RISKGATE_POLICY_UNREADABLE");
        expect((err as PolicyError).message).toContain("broken.yaml");
      }
    }
  });

  it("names the file when it cannot be read", async () => {
    await expect(loadPolicyFile("/nonexistent/policy.yaml")).rejects.toMatchObject({
      code: "RISKGATE_POLICY_UNREADABLE",
      file: "/nonexistent/policy.yaml",
    });
  });
});
