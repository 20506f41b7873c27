import { describe, expect, it } from "vitest";
import { policySchema } from "../../src/access/policy.js";
import type { AccessRequest } from "../../src/access/request.js";
import type { Verdict } from "../../src/access/verdict.js";
import { renderCheckResponse } from "../../src/transport/check-response.js";

const decisions = policySchema.parse({
  version: 1,
  identity: { issuers: ["i"], audiences: ["a"] },
  tiers: { free: {} },
  decisions: { strip_headers: ["x-user-id"] },
}).decisions;

const req = {
  headers: new Map([
    [":path", "/v1"],
    ["authorization", "Bearer secret.token.value"],
    ["x-riskgate-tier", "enterprise"],
    ["x-riskgate-admin", "1"],
    ["x-user-id", "root"],
  ]),
} as unknown as AccessRequest;

const base = {
  requestId: "r-1",
  score: 55,
  reasons: [{ code: "auth.weak", points: 40, detail: "amr=pwd" }] as Verdict["reasons"],
  subject: "alice",
  tier: "pro",
};

const headerMap = (hs: { header: { key: string; value: string } }[] | undefined) =>
  Object.fromEntries((hs ?? []).map((h) => [h.header.key, h.header.value]));

describe("Verdict -> CheckResponse", () => {
  it("allow: OK, upstream headers overwrite spoofed ones, other riskgate headers removed", () => {
    const res = renderCheckResponse({ ...base, score: 5, kind: "allow" }, req, decisions);
    expect(res.status.code).toBe(0);
    expect(res.denied_response).toBeUndefined();
    expect(headerMap(res.ok_response?.headers)).toEqual({
      "x-riskgate-decision": "allow",
      "x-riskgate-score": "5",
      "x-riskgate-request-id": "r-1",
      "x-riskgate-tier": "pro",
      "x-riskgate-subject": "alice",
    });
    expect(res.ok_response?.headers.every((h) => h.append_action === 2)).toBe(true);
    expect(res.ok_response?.headers_to_remove.sort()).toEqual(["x-riskgate-admin", "x-user-id"]);
  });

  it("challenge step_up: 401 + RFC 9470 WWW-Authenticate, gRPC UNAUTHENTICATED", () => {
    const res = renderCheckResponse(
      { ...base, kind: "challenge", acrValues: "mfa", maxAge: 300, style: "step_up" },
      req,
      decisions,
    );
    expect(res.status.code).toBe(16);
    expect(res.denied_response?.status.code).toBe(401);
    expect(headerMap(res.denied_response?.headers)["www-authenticate"]).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="mfa", max_age=300',
    );
    expect(JSON.parse(res.denied_response?.body ?? "")).toEqual({
      decision: "challenge",
      reasons: [{ code: "auth.weak", points: 40 }],
      request_id: "r-1",
    });
  });

  it("challenge header style: OK with the challenge for the upstream", () => {
    const res = renderCheckResponse(
      { ...base, kind: "challenge", acrValues: "mfa", style: "header" },
      req,
      decisions,
    );
    expect(res.status.code).toBe(0);
    const hs = headerMap(res.ok_response?.headers);
    expect(hs["x-riskgate-decision"]).toBe("challenge");
    expect(hs["x-riskgate-challenge"]).toBe('acr_values="mfa"');
  });

  it("throttle: 429 + Retry-After, RESOURCE_EXHAUSTED", () => {
    const res = renderCheckResponse(
      { ...base, kind: "throttle", retryAfterSeconds: 42 },
      req,
      decisions,
    );
    expect(res.status.code).toBe(8);
    expect(res.denied_response?.status.code).toBe(429);
    expect(headerMap(res.denied_response?.headers)["retry-after"]).toBe("42");
  });

  it.each([
    ["license", 7, 403],
    ["risk", 7, 403],
    ["malformed", 7, 403],
    ["authentication", 16, 401],
    ["failure", 14, 503],
  ] as const)("deny (%s): gRPC %i, HTTP %i, JSON body without secrets", (cause, grpc, http) => {
    const res = renderCheckResponse({ ...base, kind: "deny", cause }, req, decisions);
    expect(res.status.code).toBe(grpc);
    expect(res.denied_response?.status.code).toBe(http);
    expect(headerMap(res.denied_response?.headers)["content-type"]).toBe("application/json");
    expect(res.denied_response?.body).not.toContain("secret");
    expect(JSON.parse(res.denied_response?.body ?? "").decision).toBe("deny");
  });

  it("401 for a missing credential has no error attribute; an invalid one says invalid_token", () => {
    const missing = renderCheckResponse(
      {
        ...base,
        reasons: [{ code: "identity.missing", points: 0 }],
        kind: "deny",
        cause: "authentication",
      },
      req,
      decisions,
    );
    expect(headerMap(missing.denied_response?.headers)["www-authenticate"]).toBe(
      'Bearer realm="riskgate"',
    );
    const invalid = renderCheckResponse(
      {
        ...base,
        reasons: [{ code: "identity.expired", points: 0 }],
        kind: "deny",
        cause: "authentication",
      },
      req,
      decisions,
    );
    expect(headerMap(invalid.denied_response?.headers)["www-authenticate"]).toContain(
      'error="invalid_token"',
    );
  });
});
