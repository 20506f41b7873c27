import { type DestinationStream, type Logger, pino } from "pino";

/** Field names that hold credentials, wherever they show up in a logged object. */
const SECRET_FIELDS = [
  "token",
  "access_token",
  "id_token",
  "refresh_token",
  "password",
  "secret",
  "client_secret",
  "api_key",
  "apikey",
  "authorization",
  "cookie",
];

/** Header names that carry credentials (lower-case, as the transports normalise them). */
const SECRET_HEADERS = [
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "api-key",
  "x-auth-token",
  "x-access-token",
  "x-amz-security-token",
];

/** Objects that may wrap credentials one level down: errors, requests, their details. */
const PARENTS = ["err", "error", "req", "request", "details"];

/**
 * Paths pino must never print: credential fields at the top level and inside the usual
 * wrappers (`err.token`, `req.cookie`), and credential headers of a logged `headers` object
 * (also under the wrappers). Spelled out rather than `*.` wildcards, which cost about a
 * microsecond each on every line. pino cannot match at any depth, so code must not log raw
 * requests; this is the guard behind that rule.
 */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_FIELDS,
  ...PARENTS.flatMap((p) => SECRET_FIELDS.map((f) => `${p}.${f}`)),
  ...["", ...PARENTS.map((p) => `${p}.`)].flatMap((p) =>
    SECRET_HEADERS.map((h) => `${p}headers["${h}"]`),
  ),
];

/** Creates the operational logger (JSON lines on stdout, or `destination` in tests). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "riskgate" },
      redact: { paths: [...REDACT_PATHS], censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
