import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REASONS } from "../../src/access/reasons.js";
import { reasonCodeRows } from "../../src/access/reference.js";
import { loadSettings, SETTINGS } from "../../src/config/settings.js";
import { ERRORS, RiskgateError } from "../../src/errors.js";
import { REFERENCE_DOC } from "../helpers/reference-docs.js";

const readme = readFileSync(REFERENCE_DOC, "utf8");

/** Rows of the README table that follows `## heading`, as arrays of cell texts. */
function table(heading: string): string[][] {
  const start = readme.indexOf(`## ${heading}\n`);
  expect(start, `README has a "${heading}" section`).toBeGreaterThan(-1);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of readme.slice(start).split("\n").slice(1)) {
    if (line.startsWith("## ")) break;
    if (line.startsWith("|")) {
      inTable = true;
      rows.push(
        line
          .split("|")
          .slice(1, -1)
          .map((c) => c.trim()),
      );
    } else if (inTable) break;
  }
  return rows.slice(2);
}

/** What `fn` throws; undefined when it returns. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

const unquote = (s: string) => s.replace(/^`|`$/g, "");

describe("README is in step with the code", () => {
  it("lists every reason code with its meaning", () => {
    const rows = table("Reason codes").map(([code, meaning]) => [unquote(code ?? ""), meaning]);
    expect(Object.fromEntries(rows)).toEqual(REASONS);
    // the rows as the registry renders them, in any order
    const start = readme.indexOf("## Reason codes\n");
    const documented = readme
      .slice(start)
      .split("\n")
      .filter((line) => line.startsWith("| `"));
    expect(reasonCodeRows().filter((row) => !documented.includes(row))).toEqual([]);
  });

  it("lists every setting with its default and doc", () => {
    const rows = table("Settings").map(([env, def, doc]) => [
      unquote(env ?? ""),
      unquote(def ?? ""),
      doc,
    ]);
    expect(rows).toEqual(
      Object.values(SETTINGS).map((s) => [
        s.env,
        "docDefault" in s ? s.docDefault : String(s.default),
        s.doc,
      ]),
    );
  });

  it("lists every error code with message and outcome", () => {
    const rows = table("Errors").map(([code, message, outcome]) => [
      unquote(code ?? ""),
      { message, outcome },
    ]);
    expect(Object.fromEntries(rows)).toEqual(ERRORS);
  });
});

describe("settings", () => {
  it("uses defaults, parses values, and names the variable in errors", () => {
    expect(loadSettings({})).toMatchObject({
      grpcAddress: "0.0.0.0:9191",
      dev: false,
      trustedHops: 0,
    });
    expect(loadSettings({ RISKGATE_DEV: "yes", RISKGATE_TRUSTED_HOPS: "2" })).toMatchObject({
      dev: true,
      trustedHops: 2,
    });
    expect(() => loadSettings({ RISKGATE_TRUSTED_HOPS: "many" })).toThrow(
      /RISKGATE_TRUSTED_HOPS="many": expected an integer/,
    );
    // a failed expectation inside a catch would pass when nothing throws: catch, then assert
    const err = thrown(() => loadSettings({ RISKGATE_LOG_LEVEL: "loud" }));
    expect(err).toBeInstanceOf(RiskgateError);
    expect((err as RiskgateError).code).toBe("RISKGATE_SETTING_INVALID");
    expect((err as RiskgateError).details).toEqual({ env: "RISKGATE_LOG_LEVEL" });
    expect(Object.isFrozen(loadSettings({}))).toBe(true);
  });
});
