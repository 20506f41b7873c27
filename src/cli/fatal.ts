import { type ErrorCode, RiskgateError } from "../errors.js";

/**
 * Exit codes of `riskgate serve`, documented in docs/reference/cli.md ("Exit codes"). A supervisor can
 * tell a configuration mistake (fix the file or the setting) from an unreachable dependency
 * (retry later) and from a port conflict.
 */
export const EXIT = {
  /** Stopped cleanly after a drain. */
  ok: 0,
  /** An unexpected error, or the drain failed. */
  failed: 1,
  /** A setting, the policy file, a list file or a geolocation database is wrong. */
  config: 2,
  /** The JWKS (or another dependency needed to serve) could not be reached at start. */
  unavailable: 3,
  /** A listen address (gRPC, HTTP or metrics) could not be bound. */
  listen: 4,
} as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  RISKGATE_SETTING_INVALID: EXIT.config,
  RISKGATE_POLICY_INVALID: EXIT.config,
  RISKGATE_POLICY_UNREADABLE: EXIT.config,
  RISKGATE_LIST_UNREADABLE: EXIT.config,
  RISKGATE_GEO_UNAVAILABLE: EXIT.config,
  RISKGATE_CLEARANCE_KEYS_INVALID: EXIT.config,
  RISKGATE_JWKS_UNAVAILABLE: EXIT.unavailable,
  RISKGATE_STORE_UNAVAILABLE: EXIT.unavailable,
  RISKGATE_LISTEN_FAILED: EXIT.listen,
};

/** What to change, for errors whose message does not already name the setting. */
const HINT: Partial<Record<ErrorCode, string>> = {
  RISKGATE_POLICY_INVALID: "fix the policy file (RISKGATE_POLICY or --policy)",
  RISKGATE_POLICY_UNREADABLE: "fix the policy file (RISKGATE_POLICY or --policy)",
  RISKGATE_LIST_UNREADABLE: "fix the list file the policy names (RISKGATE_POLICY or --policy)",
  RISKGATE_CLEARANCE_KEYS_INVALID:
    "set RISKGATE_CLEARANCE_KEYS_FILE to a JWK Set of oct keys with kids",
  RISKGATE_GEO_UNAVAILABLE: "set RISKGATE_GEO, RISKGATE_GEO_CITY_FILES or RISKGATE_GEO_ASN_FILES",
  RISKGATE_JWKS_UNAVAILABLE:
    "set identity.jwks in the policy (RISKGATE_POLICY or --policy), make it reachable, or use --dev (RISKGATE_DEV)",
  RISKGATE_STORE_UNAVAILABLE: "set REDIS_URL (or the RISKGATE_REDIS_* settings)",
};

/** The exit code a start-up error maps to. */
export function exitCodeOf(err: unknown): number {
  return err instanceof RiskgateError ? (EXIT_BY_CODE[err.code] ?? EXIT.failed) : EXIT.failed;
}

/**
 * One line for stderr that names the cause and the setting to change:
 * `riskgate: RISKGATE_X: what happened; what to change`. Multi-line messages (a policy's list of
 * problems) are joined with "; ".
 */
export function fatalLine(err: unknown): string {
  const oneLine = (s: string) =>
    s
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "")
      .join("; ");
  if (err instanceof RiskgateError) {
    const hint = HINT[err.code];
    const message = oneLine(err.message);
    // a message that already names a setting or flag needs no hint
    const named = /RISKGATE_|REDIS_URL|--[a-z]/.test(message);
    const shown = hint === undefined || named ? message : `${message}; ${hint}`;
    return `riskgate: ${err.code}: ${shown}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `riskgate: RISKGATE_INTERNAL: ${oneLine(message)}`;
}

/**
 * Turns a failure to listen into RISKGATE_LISTEN_FAILED naming the address and the setting;
 * other errors come back unchanged.
 */
export function listenError(err: unknown, address: string, setting: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof TypeError && /host:port/.test(err.message)) {
    return new RiskgateError(
      "RISKGATE_SETTING_INVALID",
      `${setting}=${JSON.stringify(address)}: expected host:port`,
      { env: setting },
      { cause: err },
    );
  }
  if (e?.syscall !== "listen" && e?.syscall !== "bind") return err;
  return new RiskgateError(
    "RISKGATE_LISTEN_FAILED",
    `cannot listen on ${address} (${e.code ?? e.message}); set ${setting} to a free address`,
    { address, setting },
    { cause: err },
  );
}
