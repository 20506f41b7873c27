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

/** A setting of the wrong form is a setting error (exit 2), whichever listener it is for. */
describe("listen addresses and REDIS_URL are checked for their form", () => {
  const refusal = (env: Record<string, string>) => {
    try {
      settingsFromArgs([], env);
    } catch (err) {
      return err as RiskgateError;
    }
    return undefined;
  };

  it.each([
    ["RISKGATE_GRPC_ADDRESS", "nonsense"],
    ["RISKGATE_GRPC_ADDRESS", "127.0.0.1:65536"],
    ["RISKGATE_GRPC_ADDRESS", ":9191"],
    ["RISKGATE_HTTP_ADDRESS", "nonsense"],
    ["RISKGATE_HTTP_ADDRESS", "1.2.3.4:99999"],
    ["RISKGATE_METRICS_ADDRESS", "9464"],
  ])("refuses %s=%s", (env, value) => {
    expect(refusal({ [env]: value })).toMatchObject({
      code: "RISKGATE_SETTING_INVALID",
      details: { env },
    });
  });

  it.each([
    ["RISKGATE_GRPC_ADDRESS", "[::1]:9191"],
    ["RISKGATE_GRPC_ADDRESS", "localhost:0"],
    ["RISKGATE_HTTP_ADDRESS", ":9192"],
    ["RISKGATE_HTTP_ADDRESS", "off"],
    ["RISKGATE_METRICS_ADDRESS", "off"],
    ["RISKGATE_METRICS_ADDRESS", ":9464"],
    ["REDIS_URL", "rediss://user:pw@redis:6380/2"],
  ])("takes %s=%s", (env, value) => {
    expect(refusal({ [env]: value })).toBeUndefined();
  });

  it("refuses a REDIS_URL of another scheme without echoing its credentials", () => {
    const err = refusal({ REDIS_URL: "http://user:hunter2@redis:6379" });
    expect(err).toMatchObject({ code: "RISKGATE_SETTING_INVALID", details: { env: "REDIS_URL" } });
    expect(err?.message).toBe("REDIS_URL: expected a redis:// or rediss:// URL, got http://");
  });
});
