import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCheckRequest } from "../../src/cli/check.js";
import { httpCall } from "../helpers/http-call.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Paths whose meaning depends on the upstream, sent to the real server over both transports:
 * refused `request.ambiguous_path` by default, decided as Envoy passes them when the policy opts
 * in with `ambiguous_paths: as_envoy`.
 */
const AMBIGUOUS = [
  "/v1/items/..%2fadmin",
  "/v1/items%5c..%5cadmin",
  "/v1/items\\..\\admin",
  "/v1/items/..;/admin",
  "/v1/items/%252e%252e/admin",
  "/v1/items/%c0%ae%c0%ae/admin",
  "/v1/items#/admin",
];

const demo = readFileSync("policies/demo.yaml", "utf8");

/** Both transports' answers to a GET of `path` by a pro caller. */
async function answers(s: TestServer, path: string) {
  const token = await s.token({ sub: "ann", tier: "pro", amr: ["mfa"] });
  const grpc = await s.client.check(
    buildCheckRequest({
      method: "GET",
      path,
      host: "api.test",
      ip: "127.0.0.1",
      headers: {},
      token,
    }),
  );
  const http = await httpCall(s.app.httpPort() as number, "/auth/forward", {
    authorization: `Bearer ${token}`,
    "x-forwarded-method": "GET",
    "x-forwarded-host": "api.test",
    "x-forwarded-uri": path,
  });
  return {
    grpc: grpc.status.code === 0 ? "allow" : grpc.status.message,
    http: `${http.status} ${http.status === 200 ? "" : (JSON.parse(http.body) as { reasons: { code: string }[] }).reasons.map((r) => r.code).join(",")}`.trim(),
  };
}

describe("ambiguous paths, by default", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ policyText: demo });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it.each(AMBIGUOUS)("%s is refused request.ambiguous_path over gRPC and HTTP", async (path) => {
    expect(await answers(s, path)).toEqual({
      grpc: "request.ambiguous_path",
      http: "400 request.ambiguous_path",
    });
  });

  it("a plain path is decided as before", async () => {
    expect(await answers(s, "/v1/items/../items?q=a%2Fb")).toEqual({ grpc: "allow", http: "200" });
  });
});

describe("ambiguous paths with ambiguous_paths: as_envoy", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ policyText: `${demo}\nambiguous_paths: as_envoy\n` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it.each(AMBIGUOUS)("%s is decided on the path as Envoy passes it", async (path) => {
    expect(await answers(s, path)).toEqual({ grpc: "allow", http: "200" });
  });
});
