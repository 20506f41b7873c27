import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REASONS } from "../../src/access/reasons.js";
import { reasonCodeRows } from "../../src/access/reference.js";
import { loadSettings, SETTINGS } from "../../src/config/settings.js";
import { ERRORS, RiskgateError } from "../../src/errors.js";

/** The reference pages whose tables are kept in step with the code. */
const REASON_CODES_DOC = "docs/reference/reason-codes.md";
const SETTINGS_DOC = "docs/reference/settings.md";
const ERRORS_DOC = "docs/reference/errors.md";

/** Rows of the first table of the page at `path`, as arrays of cell texts. */
function table(path: string): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const line of readFileSync(path, "utf8").split("\n")) {
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
  expect(rows.length, `${path} has a table`).toBeGreaterThan(2);
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

describe("the reference pages are in step with the code", () => {
  it("lists every reason code with its meaning", () => {
    const rows = table(REASON_CODES_DOC).map(([code, meaning]) => [unquote(code ?? ""), meaning]);
    expect(Object.fromEntries(rows)).toEqual(REASONS);
    // the rows as the registry renders them, in any order
    const documented = readFileSync(REASON_CODES_DOC, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("| `"));
    expect(reasonCodeRows().filter((row) => !documented.includes(row))).toEqual([]);
  });

  it("lists every setting with its default and doc", () => {
    const rows = table(SETTINGS_DOC).map(([env, def, doc]) => [
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
    const rows = table(ERRORS_DOC).map(([code, message, outcome]) => [
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
