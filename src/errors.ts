/**
 * riskgate's error registry: every error a caller or operator can meet has a stable code, a
 * message and the outcome it maps to. docs/reference/errors.md is kept in step by a test.
 */
export const ERRORS = {
  RISKGATE_POLICY_INVALID: {
    message: "The policy file does not validate.",
    outcome: "startup fails (exit 2); on reload the last good policy stays",
  },
  RISKGATE_POLICY_UNREADABLE: {
    message: "The policy file cannot be read or is not YAML.",
    outcome: "startup fails (exit 2); on reload the last good policy stays",
  },
  RISKGATE_SETTING_INVALID: {
    message: "An environment setting has a value of the wrong form.",
    outcome: "startup fails (exit 2)",
  },
  RISKGATE_JWKS_UNAVAILABLE: {
    message: "The JWKS could not be fetched or parsed.",
    outcome:
      "tokens are denied with identity.keys_unavailable until keys load once; afterwards a failed refresh keeps the last good keys; health stays NOT_SERVING until keys load",
  },
  RISKGATE_GEO_UNAVAILABLE: {
    message: "A geolocation (mmdb) database is missing or unreadable.",
    outcome: "startup fails (exit 2)",
  },
  RISKGATE_SIGNAL_DATA_MISSING: {
    message:
      "The policy configures a signal whose data the server lacks (hosting_asn without ASN data, country lists without geolocation).",
    outcome: "startup fails (exit 2); on reload the last good policy stays",
  },
  RISKGATE_LIST_UNREADABLE: {
    message: "An IP or ASN list file is unreadable, empty or not a list.",
    outcome: "startup fails (exit 2); on reload the last good list stays",
  },
  RISKGATE_STORE_UNAVAILABLE: {
    message: "The state store failed or timed out.",
    outcome: "the failure mode (open, closed, safe_methods_only) decides",
  },
  RISKGATE_REQUEST_MALFORMED: {
    message: "The CheckRequest or forward-auth request carries no HTTP request to decide on.",
    outcome:
      "denied with request.malformed (403; 400 on the HTTP listener), whatever failure.on_internal_error says",
  },
  RISKGATE_INTERNAL: {
    message: "An unexpected internal error.",
    outcome: "failure.on_internal_error (default deny), logged once",
  },
  RISKGATE_REPLAY_INPUT_INVALID: {
    message:
      "A replay input line is not JSON, not a CheckRequest or audit line, lacks its time, or is out of time order.",
    outcome: "`riskgate replay` and `riskgate explain` stop and exit 2, naming the line",
  },
  RISKGATE_LISTEN_FAILED: {
    message: "A listen address (gRPC, HTTP or metrics) could not be bound.",
    outcome: "startup fails (exit 4); the line names the address and its setting",
  },
  RISKGATE_WORKER_FAILED: {
    message: "A `--workers` server process exited before it was serving.",
    outcome: "the primary stops the other workers and exits with that worker's code",
  },
  RISKGATE_CLEARANCE_KEYS_INVALID: {
    message:
      "The clearance key set (RISKGATE_CLEARANCE_KEYS_FILE) is unreadable or holds a key without a kid, not oct, or shorter than 32 bytes; or a policy asks for interactive challenges and no key set is configured outside --dev.",
    outcome: "startup fails (exit 2); on reload the last good policy stays",
  },
  RISKGATE_CHECK_FAILED: {
    message: "The CLI could not reach the server or the server refused the call.",
    outcome: "`riskgate check` exits 2",
  },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** A riskgate failure with a stable code and structured, non-secret details. */
export class RiskgateError extends Error {
  override readonly name: string = "RiskgateError";
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message?: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message ?? ERRORS[code].message, options);
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

/**
 * `err` as a RiskgateError: itself when it is one, else RISKGATE_INTERNAL with `err` as its
 * cause (logs print the cause's message and stack after the wrapper's).
 */
export function asRiskgateError(err: unknown): RiskgateError {
  if (err instanceof RiskgateError) return err;
  return new RiskgateError("RISKGATE_INTERNAL", undefined, {}, { cause: err });
}

/** One problem in a policy file: where and what. */
export interface PolicyIssue {
  readonly path: string;
  readonly message: string;
}

/** The policy file is invalid; `issues` names every problem with its path. */
export class PolicyError extends RiskgateError {
  readonly file: string;
  readonly issues: readonly PolicyIssue[];

  constructor(
    code: "RISKGATE_POLICY_INVALID" | "RISKGATE_POLICY_UNREADABLE",
    file: string,
    issues: PolicyIssue[],
    options?: ErrorOptions,
  ) {
    super(code, formatPolicyIssues(file, issues), { file, issues }, options);
    this.file = file;
    this.issues = Object.freeze(issues);
  }
}

function formatPolicyIssues(file: string, issues: readonly PolicyIssue[]): string {
  const lines = issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`);
  return `${file}: ${issues.length} problem${issues.length === 1 ? "" : "s"}\n${lines.join("\n")}`;
}
