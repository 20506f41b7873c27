import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import {
  compilePathPattern,
  compileRoutes,
  literalStart,
  resolveRoute,
} from "../../src/access/routes.js";
import { PolicyError } from "../../src/errors.js";
import { accessRequest } from "../helpers/access-request.js";

const demo = readFileSync("policies/demo.yaml", "utf8");
const CATASTROPHIC = "/v1/reports/(a+)+/export";

/** The demo policy with one more route, first in order, matching `pattern`. */
const withPattern = (pattern: string) =>
  demo.replace(
    /^routes:\n/m,
    `routes:\n  - name: reports\n    match: { path: { pattern: ${JSON.stringify(pattern)} } }\n    sensitivity: high\n`,
  );

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parsePolicy(text, "p.yaml");
  } catch (err) {
    if (err instanceof PolicyError) return [...err.issues];
    throw err;
  }
  throw new Error("policy was accepted");
}

describe("route path patterns", () => {
  it("run in linear time: a backtracking pattern answers a 10k-character path", () => {
    const table = compileRoutes(parsePolicy(withPattern(CATASTROPHIC), "p.yaml").doc);
    const path = (middle: string) => `/v1/reports/${middle}/export`;
    // a JavaScript RegExp needs ~2^n steps for n a's and a near miss; RE2 scans once
    const miss = accessRequest({ path: path(`${"a".repeat(10_000)}!`) });
    expect(resolveRoute(table, miss).name).not.toBe("reports");
    const hit = accessRequest({ path: path("a".repeat(10_000)) });
    expect(resolveRoute(table, hit).name).toBe("reports");
  });

  it("match the whole path, with RE2's alternation and classes", () => {
    const m = compilePathPattern("/v1/items/[0-9]+|/v2/.*");
    expect(m("/v1/items/42")).toBe(true);
    expect(m("/v1/items/42/x")).toBe(false);
    expect(m("/x/v1/items/42")).toBe(false);
    expect(m("/v2/anything")).toBe(true);
  });

  it.each([
    ["a backreference", "/v1/(a)\\1"],
    ["a lookahead", "/v1/(?=admin)"],
    ["a negative lookbehind", "/v1/(?<!x)y"],
    ["a possessive repeat", "/v1/a++"],
  ])("reject %s at validation, naming the path", (_what, pattern) => {
    const issues = issuesOf(withPattern(pattern));
    expect(issues).toContainEqual({
      path: "routes[0].match.path.pattern",
      message: expect.stringMatching(/^not a valid RE2 regular expression: /),
    });
  });

  it("`riskgate policy validate` rejects a lookaround pattern with the path (built CLI)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "riskgate-routes-")), "p.yaml");
    writeFileSync(file, withPattern("/v1/(?!admin).*"));
    const run = promisify(execFile);
    const err = await run(process.execPath, ["dist/src/cli/main.js", "policy", "validate", file])
      .then(() => undefined)
      .catch((e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain(
      "routes[0].match.path.pattern: not a valid RE2 regular expression",
    );
  });

  it("keep the default route's resolution in the table, one object per policy load", () => {
    const doc = parsePolicy(demo, "p.yaml").doc;
    const table = compileRoutes(doc);
    const unmatched = accessRequest({ path: "/nowhere/at/all" });
    const first = resolveRoute(table, unmatched);
    expect(first).toMatchObject({ name: "default", rule: undefined });
    expect(resolveRoute(table, unmatched)).toBe(first);
    expect(resolveRoute(compileRoutes(doc), unmatched)).not.toBe(first);
  });
});

describe("path patterns skip the regex on paths without their literal start", () => {
  it("finds the text every match starts with, or none when unsure", () => {
    expect(literalStart("/v1/reports/[^/]+/export")).toBe("/v1/reports/");
    expect(literalStart("/v1/items")).toBe("/v1/items");
    expect(literalStart("/ab?c")).toBe("/a");
    expect(literalStart("/ab*")).toBe("/a");
    expect(literalStart("/ab{2}")).toBe("/a");
    expect(literalStart("/ab+")).toBe("/ab");
    expect(literalStart("/a|/b")).toBe("");
    expect(literalStart("/v1/(a|b)")).toBe("");
    expect(literalStart("(?i)/admin")).toBe("");
    expect(literalStart("\\/x")).toBe("");
  });

  it("matches exactly the paths the regex matches", () => {
    const patterns = ["/v1/reports/[^/]+/export", "/ab?c", "/ab*", "/ab{2}", "/a|/b", "(?i)/Admin"];
    const paths = [
      "/v1/reports/7/export",
      "/v1/reports//export",
      "/ac",
      "/abc",
      "/a",
      "/abb",
      "/b",
    ];
    for (const pattern of patterns) {
      const re = new RegExp(
        `^(?:${pattern.replace("(?i)", "")})$`,
        pattern.startsWith("(?i)") ? "i" : "",
      );
      const matches = compilePathPattern(pattern);
      for (const path of [...paths, "/admin", "/ADMIN"]) expect(matches(path)).toBe(re.test(path));
    }
  });
});
