import type { PolicyDocument } from "../access/policy.js";
import type { AccessRequest } from "../access/request.js";
import type { Verdict } from "../access/verdict.js";
import { type CheckResponseMessage, renderCheckResponse } from "./check-response.js";
import type { HttpDialect } from "./http-request.js";

/** An HTTP answer to a forward-auth request. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/**
 * Header carrying a denial's real status to nginx, whose auth_request passes only 2xx, 401
 * and 403 (anything else becomes a 500): riskgate answers 403 with the real status here, and
 * the shipped config's `error_page` turns it back into 429, 503 or 400.
 */
export const NGINX_STATUS_HEADER = "x-riskgate-status";
/** The denial's JSON body as a header: nginx drops the subrequest's body. */
export const NGINX_BODY_HEADER = "x-riskgate-body";
/** Envoy's HTTP ext_authz removes the upstream headers this names (comma-separated). */
export const ENVOY_REMOVE_HEADER = "x-envoy-auth-headers-to-remove";

/**
 * Renders a verdict for a forward-auth dialect. The verdict goes through the same
 * {@link renderCheckResponse} as for gRPC (same headers, same JSON body, same
 * WWW-Authenticate), and only the envelope differs: an allow is a 200 carrying the upstream
 * headers, a denial its status, headers and body (an interactive challenge: a 302 to the
 * challenge page). A malformed request is a 400 (403 when it came from an untrusted peer).
 */
export function renderHttpAnswer(
  dialect: HttpDialect,
  verdict: Verdict,
  req: AccessRequest,
  decisions: PolicyDocument["decisions"],
): HttpAnswer {
  return toHttpAnswer(dialect, renderCheckResponse(verdict, req, decisions), verdict);
}

/** The HTTP envelope of a rendered CheckResponse, in a dialect. */
export function toHttpAnswer(
  dialect: HttpDialect,
  response: CheckResponseMessage,
  verdict?: Verdict,
): HttpAnswer {
  const ok = response.ok_response;
  if (ok !== undefined) {
    const headers: [string, string][] = ok.headers.map((h) => [h.header.key, h.header.value]);
    if (dialect === "envoy" && ok.headers_to_remove.length > 0) {
      headers.push([ENVOY_REMOVE_HEADER, ok.headers_to_remove.join(",")]);
    }
    return { status: 200, headers, body: "" };
  }
  const denied = response.denied_response;
  let status = denied?.status.code ?? 403;
  if (verdict?.kind === "deny" && verdict.cause === "malformed") {
    status = verdict.reasons.some((r) => r.code === "request.untrusted_proxy") ? 403 : 400;
  }
  const headers: [string, string][] = (denied?.headers ?? []).map((h) => [
    h.header.key,
    h.header.value,
  ]);
  let body = denied?.body ?? "";
  if (verdict?.kind === "deny" && verdict.cause === "malformed") {
    // bad input says what was wrong with it (the detail names headers, never their values)
    body = JSON.stringify({
      decision: "deny",
      reasons: verdict.reasons.map((r) => ({ code: r.code, points: r.points })),
      request_id: verdict.requestId,
      error: verdict.reasons[0]?.detail ?? "malformed request",
    });
  }
  if (dialect === "nginx") {
    headers.push([NGINX_STATUS_HEADER, String(status)]);
    headers.push([NGINX_BODY_HEADER, body]);
    // a redirect too: nginx's @riskgate_denied answers `return 302 $rg_location`
    if (status !== 401 && status !== 403) status = 403;
  }
  return { status, headers, body };
}
