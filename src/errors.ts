/**
 * riskgate's error registry: every error a caller or operator can meet has a stable code, a
 * message and the outcome it maps to. The README's error table is kept in step by a test.
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
  RISKGATE_BUDGET_EXCEEDED: {
    message: "The decision ran past its time budget.",
    outcome: "the failure mode decides",
  },
  RISKGATE_INTERNAL: {
    message: "An unexpected internal error.",
    outcome: "failure.on_internal_error (default deny), logged once",
  },
  RISKGATE_CHECK_FAILED: {
    message: "The CLI could not reach the server or the server refused the call.",
    outcome: "`riskgate check` exits 2",
  },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** A riskgate failure with a stable code and structured, non-secret details. */
export class RiskgateError extends Error {
  override readonly name = "RiskgateError";
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
