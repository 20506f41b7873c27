import { describe, expect, it } from "vitest";
import { settingsFromArgs } from "../../src/cli/serve.js";
import { RiskgateError } from "../../src/errors.js";

/** `serve` flags go through the settings table's parsers: one rule per setting, one error form. */
describe("serve flags as settings", () => {
  it("overrides the environment with the flags, parsed", () => {
    const s = settingsFromArgs(
      ["--dev", "--workers", "3", "--address", "127.0.0.1:0", "--policy", "p.yaml"],
      { RISKGATE_WORKERS: "2", RISKGATE_GRPC_ADDRESS: "0.0.0.0:1" },
    );
    expect(s).toMatchObject({
      dev: true,
      workers: 3,
      grpcAddress: "127.0.0.1:0",
      policyFile: "p.yaml",
    });
    expect(Object.isFrozen(s)).toBe(true);
  });

  it.each([["0"], ["1.5"], ["many"], ["257"]])("refuses --workers %s naming the flag", (n) => {
    const err = (() => {
      try {
        settingsFromArgs(["--workers", n], {});
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(RiskgateError);
    expect(err).toMatchObject({
      code: "RISKGATE_SETTING_INVALID",
      message: `--workers (RISKGATE_WORKERS)=${JSON.stringify(n)}: expected an integer from 1 to 256`,
    });
  });

  it("refuses an unknown flag as a setting error", () => {
    expect(() => settingsFromArgs(["--wrokers", "2"], {})).toThrow(
      expect.objectContaining({ code: "RISKGATE_SETTING_INVALID" }),
    );
  });
});
