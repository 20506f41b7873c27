import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import type { Verdict } from "../../src/access/verdict.js";
import { renderHttpAnswer } from "../../src/transport/http-response.js";
import { accessRequest } from "../helpers/access-request.js";

const decisions = parsePolicy(
  "version: 1\nidentity: { issuers: [i], audiences: [a] }\ntiers: { free: {} }\nroutes: []\n",
  "p.yaml",
).doc.decisions;

const base = { requestId: "r-1", score: 12, reasons: [] } as const;
const spoofed = accessRequest({
  headers: new Map([
    ["x-riskgate-tier", "enterprise"],
    ["x-riskgate-admin", "yes"],
  ]),
});

function header(a: { headers: readonly (readonly [string, string])[] }, name: string) {
  return a.headers.find(([k]) => k === name)?.[1];
}

describe("forward-auth answers", () => {
  const allow: Verdict = { ...base, kind: "allow", tier: "pro", subject: "ann" };
  const throttle: Verdict = {
    ...base,
    kind: "throttle",
    retryAfterSeconds: 7,
    reasons: [{ code: "velocity.subject", points: 50 }],
  };
  const failure: Verdict = {
    ...base,
    kind: "deny",
    cause: "failure",
    reasons: [{ code: "failure.store", points: 0 }],
  };
  const challenge: Verdict = {
    ...base,
    kind: "challenge",
    acrValues: "mfa",
    maxAge: 900,
    style: "step_up",
  };

  it("allows with 200 and the upstream headers, in every dialect", () => {
    for (const dialect of ["nginx", "forward", "envoy"] as const) {
      const a = renderHttpAnswer(dialect, allow, spoofed, decisions);
      expect(a.status).toBe(200);
      expect(header(a, "x-riskgate-decision")).toBe("allow");
      expect(header(a, "x-riskgate-tier")).toBe("pro");
      expect(header(a, "x-riskgate-subject")).toBe("ann");
    }
  });

  it("tells Envoy which spoofed headers to remove upstream", () => {
    const a = renderHttpAnswer("envoy", allow, spoofed, decisions);
    expect(header(a, "x-envoy-auth-headers-to-remove")).toBe("x-riskgate-admin");
  });

  it("answers Traefik and Caddy with the real status, headers and JSON body", () => {
    const t = renderHttpAnswer("forward", throttle, spoofed, decisions);
    expect(t.status).toBe(429);
    expect(header(t, "retry-after")).toBe("7");
    expect(JSON.parse(t.body)).toEqual({
      decision: "throttle",
      reasons: [{ code: "velocity.subject", points: 50 }],
      request_id: "r-1",
    });
    expect(renderHttpAnswer("forward", failure, spoofed, decisions).status).toBe(503);
    const c = renderHttpAnswer("forward", challenge, spoofed, decisions);
    expect(c.status).toBe(401);
    expect(header(c, "www-authenticate")).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="mfa", max_age=900',
    );
  });

  it("maps 429 and 503 to a 403 carrying the real status and body for nginx", () => {
    const t = renderHttpAnswer("nginx", throttle, spoofed, decisions);
    expect(t.status).toBe(403);
    expect(header(t, "x-riskgate-status")).toBe("429");
    expect(header(t, "retry-after")).toBe("7");
    expect(JSON.parse(header(t, "x-riskgate-body") ?? "")).toMatchObject({ decision: "throttle" });
    const f = renderHttpAnswer("nginx", failure, spoofed, decisions);
    expect([f.status, header(f, "x-riskgate-status")]).toEqual([403, "503"]);
    // nginx passes 401 itself, with WWW-Authenticate
    const c = renderHttpAnswer("nginx", challenge, spoofed, decisions);
    expect([c.status, header(c, "x-riskgate-status")]).toEqual([401, "401"]);
  });

  it("answers bad input with 400 and what was wrong, and an untrusted peer with 403", () => {
    const bad: Verdict = {
      ...base,
      kind: "deny",
      cause: "malformed",
      reasons: [{ code: "request.malformed", points: 0, detail: "x-forwarded-uri is missing" }],
    };
    const a = renderHttpAnswer("forward", bad, spoofed, decisions);
    expect(a.status).toBe(400);
    expect(JSON.parse(a.body)).toMatchObject({ error: "x-forwarded-uri is missing" });
    const untrusted: Verdict = {
      ...bad,
      reasons: [{ code: "request.untrusted_proxy", points: 0 }],
    };
    expect(renderHttpAnswer("forward", untrusted, spoofed, decisions).status).toBe(403);
    expect(header(renderHttpAnswer("nginx", bad, spoofed, decisions), "x-riskgate-status")).toBe(
      "400",
    );
  });
});
