import type { PolicyDocument } from "../access/policy.js";
import type { AccessRequest } from "../access/request.js";
import type { Verdict } from "../access/verdict.js";

/** gRPC status codes riskgate answers with (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** HeaderValueOption.append_action values. */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

interface HeaderOption {
  header: { key: string; value: string };
  append_action: number;
}

/** The CheckResponse as proto-loader encodes it (snake_case field names). */
export interface CheckResponseMessage {
  status: { code: number; message: string };
  ok_response?: { headers: HeaderOption[]; headers_to_remove: string[] };
  denied_response?: { status: { code: number }; headers: HeaderOption[]; body: string };
}

function header(key: string, value: string): HeaderOption {
  return { header: { key, value }, append_action: OVERWRITE_IF_EXISTS_OR_ADD };
}

/**
 * Renders a verdict as Envoy's CheckResponse. Headers riskgate sets upstream use
 * OVERWRITE_IF_EXISTS_OR_ADD, so a spoofed inbound value is replaced; inbound headers with
 * riskgate's prefix that it does not set (and `strip_headers`) go to `headers_to_remove`.
 */
export function renderCheckResponse(
  verdict: Verdict,
  req: AccessRequest,
  decisions: PolicyDocument["decisions"],
): CheckResponseMessage {
  switch (verdict.kind) {
    case "allow":
      return ok(verdict, req, decisions, []);
    case "challenge":
      if (verdict.style === "interactive" && verdict.location !== undefined) {
        // a browser goes to riskgate's challenge page (same host), and comes back after a pass
        return denied(verdict, GrpcCode.UNAUTHENTICATED, 302, [
          header("location", verdict.location),
          header("cache-control", "no-store"),
        ]);
      }
      if (verdict.style === "header") {
        return ok(verdict, req, decisions, [
          header(decisions.challenge.header, challengeParams(verdict.acrValues, verdict.maxAge)),
        ]);
      }
      return denied(verdict, GrpcCode.UNAUTHENTICATED, 401, [
        header(
          "www-authenticate",
          `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", ${challengeParams(verdict.acrValues, verdict.maxAge)}`,
        ),
      ]);
    case "throttle":
      return denied(verdict, GrpcCode.RESOURCE_EXHAUSTED, 429, [
        header("retry-after", String(verdict.retryAfterSeconds)),
      ]);
    case "deny":
      switch (verdict.cause) {
        case "authentication": {
          const missing = verdict.reasons.some((r) => r.code === "identity.missing");
          const challenge = missing
            ? 'Bearer realm="riskgate"'
            : 'Bearer realm="riskgate", error="invalid_token"';
          return denied(verdict, GrpcCode.UNAUTHENTICATED, 401, [
            header("www-authenticate", challenge),
          ]);
        }
        case "failure":
          return denied(verdict, GrpcCode.UNAVAILABLE, 503, [header("retry-after", "1")]);
        default:
          return denied(verdict, GrpcCode.PERMISSION_DENIED, 403, []);
      }
  }
}

function challengeParams(acrValues: string, maxAge: number | undefined): string {
  const parts: string[] = [];
  if (acrValues !== "") parts.push(`acr_values="${acrValues.replace(/["\\]/g, "")}"`);
  if (maxAge !== undefined) parts.push(`max_age=${maxAge}`);
  return parts.join(", ");
}

function ok(
  verdict: Verdict,
  req: AccessRequest,
  decisions: PolicyDocument["decisions"],
  extra: HeaderOption[],
): CheckResponseMessage {
  const prefix = decisions.header_prefix;
  const headers: HeaderOption[] = [
    header(`${prefix}decision`, verdict.kind),
    header(`${prefix}score`, String(verdict.score)),
    header(`${prefix}request-id`, verdict.requestId),
  ];
  if (verdict.tier !== undefined) headers.push(header(`${prefix}tier`, verdict.tier));
  if (verdict.subject !== undefined && decisions.subject_header) {
    headers.push(header(`${prefix}subject`, verdict.subject));
  }
  if (verdict.shadowOf !== undefined) {
    headers.push(header(`${prefix}shadow-decision`, verdict.shadowOf));
  }
  headers.push(...extra);
  const set = new Set(headers.map((h) => h.header.key));
  const remove: string[] = [];
  for (const name of req.headers.keys()) {
    if (set.has(name) || name.startsWith(":")) continue;
    if (name.startsWith(prefix) || decisions.strip_headers.includes(name)) remove.push(name);
  }
  return {
    status: { code: GrpcCode.OK, message: "" },
    ok_response: { headers, headers_to_remove: remove },
  };
}

function denied(
  verdict: Verdict,
  grpcCode: number,
  httpStatus: number,
  headers: HeaderOption[],
): CheckResponseMessage {
  const body = JSON.stringify({
    decision: verdict.kind,
    reasons: verdict.reasons.map((r) => ({ code: r.code, points: r.points })),
    request_id: verdict.requestId,
  });
  return {
    status: {
      code: grpcCode,
      message: verdict.reasons.map((r) => r.code).join(",") || verdict.kind,
    },
    denied_response: {
      status: { code: httpStatus },
      headers: [...headers, header("content-type", "application/json")],
      body,
    },
  };
}
