import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { asRiskgateError, ERRORS, RiskgateError } from "../../src/errors.js";
import { MalformedCheckRequest, toAccessRequest } from "../../src/transport/check-request.js";

/** Every TypeScript file under src/, by path. */
function sources(dir = "src"): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [p, t] of sources(path)) out.set(p, t);
    else if (entry.name.endsWith(".ts")) out.set(path, readFileSync(path, "utf8"));
  }
  return out;
}

const src = sources();

/**
 * Errors thrown in src/ that are not RiskgateErrors, each with why. Caller misuse throws
 * TypeError or RangeError early (house style), and is not listed.
 */
const KNOWN: Record<string, readonly string[]> = {
  // the settings parsers' messages; loadSettings rethrows them as RISKGATE_SETTING_INVALID
  "src/config/setting-parsers.ts": ["Error"],
  // jose's own error, classified into a reason code a few lines below
  "src/access/token-verifier.ts": ["errors.JWSSignatureVerificationFailed"],
};

describe("the error registry is closed", () => {
  it("raises every registered code somewhere in src/", () => {
    // a call whose first argument is the code: new RiskgateError("X", ...), super("X", ...)
    const raised = (code: string) =>
      [...src.values()].some((text) => new RegExp(`\\(\\s*"${code}"`).test(text));
    expect(Object.keys(ERRORS).filter((code) => !raised(code))).toEqual([]);
  });

  it("throws only RiskgateErrors (or TypeError/RangeError for caller misuse)", () => {
    const riskgate = new Set(["RiskgateError"]);
    const misuse = new Set(["TypeError", "RangeError"]);
    for (const text of src.values()) {
      for (const m of text.matchAll(/class (\w+) extends (\w+)/g)) {
        if (m[2] === "RiskgateError") riskgate.add(m[1] as string);
        if (misuse.has(m[2] as string)) misuse.add(m[1] as string);
      }
    }
    const strays: string[] = [];
    for (const [path, text] of src) {
      for (const m of text.matchAll(/throw new ([\w.]+)\(/g)) {
        const name = m[1] as string;
        if (riskgate.has(name) || misuse.has(name) || KNOWN[path]?.includes(name)) continue;
        strays.push(`${path}: ${name}`);
      }
    }
    expect(strays).toEqual([]);
  });

  it("gives a malformed CheckRequest its registered code", () => {
    let caught: unknown;
    try {
      toAccessRequest({}, { trustedHops: 0, now: 0 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MalformedCheckRequest);
    expect(caught).toBeInstanceOf(RiskgateError);
    expect((caught as RiskgateError).code).toBe("RISKGATE_REQUEST_MALFORMED");
  });

  it("wraps an unexpected error as RISKGATE_INTERNAL, keeping it as the cause", () => {
    const boom = new Error("boom");
    const wrapped = asRiskgateError(boom);
    expect(wrapped.code).toBe("RISKGATE_INTERNAL");
    expect(wrapped.cause).toBe(boom);
    const own = new RiskgateError("RISKGATE_STORE_UNAVAILABLE");
    expect(asRiskgateError(own)).toBe(own);
  });
});
