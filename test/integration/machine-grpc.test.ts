import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCheckRequest, describeResponse } from "../../src/cli/check.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

// A machine client over real gRPC: where a person is asked to step up (401), a Keycloak
// service account is throttled (429 + Retry-After) with the reason it can read.

// high-sensitivity routes weigh 45 points: in every tier's challenge band
const policyText = readFileSync("policies/demo.yaml", "utf8").replace(
  "points: { low: 0, medium: 5, high: 15 }",
  "points: { low: 0, medium: 5, high: 45 }",
);
const billing = (token: string) =>
  buildCheckRequest({
    method: "GET",
    path: "/billing/invoices",
    host: "api.example.com",
    ip: "203.0.113.7",
    headers: { "user-agent": "Go-http-client/2.0" },
    token,
  });

describe("a machine client over gRPC", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ policyText });
  });
  afterAll(() => s.stop());

  it("gets 429 with Retry-After and risk.no_challenge where a person gets a step-up", async () => {
    const person = await s.token({
      sub: "u-1",
      tier: "enterprise",
      org: "big",
      amr: ["mfa"],
      auth_time: Math.floor(Date.now() / 1000) - 60,
    });
    const asked = await s.client.check(billing(person));
    expect(asked.status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(describeResponse(asked).httpStatus).toBe(401);

    const machine = await s.token({
      sub: "d952cf23-bf92-4c8f-a3ff-4972b4f2bc5b",
      azp: "nightly-export",
      client_id: "nightly-export",
      acr: "1",
      preferred_username: "service-account-nightly-export",
      // no auth_time: nobody logged in (the dev minter stamps one unless told)
      auth_time: undefined,
      tier: "enterprise",
      org: "big",
    });
    for (let i = 0; i < 3; i++) {
      const res = await s.client.check(billing(machine));
      expect(res.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      const view = describeResponse(res);
      expect(view.httpStatus).toBe(429);
      expect(view.headers["retry-after"]).toBe("60");
      const body = JSON.parse(view.body) as { decision: string; reasons: { code: string }[] };
      expect(body.decision).toBe("throttle");
      expect(body.reasons.map((r) => r.code)).toEqual(["request.sensitivity", "risk.no_challenge"]);
    }
  });
});
