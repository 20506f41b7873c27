import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { Decision, Pipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { type PolicySnapshot, policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { Verdict } from "../../src/access/verdict.js";
import { buildCheckRequest } from "../../src/cli/check.js";
import { createClient, type RiskgateClient } from "../../src/cli/client.js";
import type { RiskgateError } from "../../src/errors.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { renderCheckResponse } from "../../src/transport/check-response.js";
import { type CheckHandlerDeps, createCheckHandler } from "../../src/transport/envoy-grpc.js";
import { loadProtos } from "../../src/transport/protos.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

// The Check handler answers every call exactly once, whatever throws: Envoy waits on a call that
// is never answered, and a second answer would be a grpc-js error.
const policy = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");
const runtime = policySnapshotOf(policy, fakeIdentifier({}));
const allow: Verdict = { kind: "allow", requestId: "r", score: 0, reasons: [] };
const decision: Decision = {
  verdict: allow,
  enforced: allow,
  timings: {},
  mode: "enforce",
  failureMode: "closed",
  policyVersion: policy.version,
};
const allowing: Pipeline = { evaluate: () => Promise.resolve(decision) };
const boom = () => {
  throw new Error("boom");
};

interface Harness {
  client: RiskgateClient;
  /** Callback invocations per call, in order. */
  answers: number[];
  errors: unknown[];
  close(): void;
}
const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

/** A real gRPC server on port 0 whose Check handler is built from `over`. */
async function serve(over: Partial<CheckHandlerDeps>): Promise<Harness> {
  const errors: unknown[] = [];
  const answers: number[] = [];
  const handler = createCheckHandler({
    pipeline: allowing,
    runtime: () => runtime,
    clock: Date.now,
    logger: createLogger("silent"),
    trustedHops: 0,
    onDecision: (e) => errors.push(e.error),
    ...over,
  });
  const server = new grpc.Server();
  server.addService(loadProtos().authorization.service, {
    Check: (call: Parameters<typeof handler>[0], cb: Parameters<typeof handler>[1]) => {
      const i = answers.push(0) - 1;
      handler(call, (...args: Parameters<typeof cb>) => {
        answers[i] = (answers[i] ?? 0) + 1;
        cb(...args);
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const client = createClient(`127.0.0.1:${port}`, 2000);
  const h = {
    client,
    answers,
    errors,
    close() {
      client.close();
      server.forceShutdown();
    },
  };
  open.push(h);
  return h;
}

const request = () =>
  buildCheckRequest({
    method: "GET",
    path: "/v1/items",
    host: "api.example.com",
    ip: "203.0.113.7",
    headers: {},
  });
const reasonsOf = (body: string | undefined) =>
  (JSON.parse(body ?? "{}") as { reasons?: { code: string }[] }).reasons?.map((r) => r.code);

describe("the Check error boundary", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on("unhandledRejection", onUnhandled);
  afterEach(() => {
    expect(unhandled).toEqual([]);
  });

  it("answers the safe outcome when the response builder throws on the verdict", async () => {
    const h = await serve({
      render: (verdict, req, decisions) =>
        verdict.kind === "allow" ? boom() : renderCheckResponse(verdict, req, decisions),
    });
    const res = await h.client.check(request());
    expect(res.status.code).toBe(14);
    expect(res.denied_response?.status.code).toBe(503);
    expect(reasonsOf(res.denied_response?.body)).toEqual(["failure.internal"]);
    expect(h.answers).toEqual([1]);
    expect(h.errors).toHaveLength(1);
    // the boundary reports it under the registry's code, with the original as its cause
    expect((h.errors[0] as RiskgateError).code).toBe("RISKGATE_INTERNAL");
    expect(((h.errors[0] as Error).cause as Error).message).toBe("boom");
  });

  it("denies with a bare 503 when the safe outcome cannot be rendered either", async () => {
    const h = await serve({ render: boom });
    for (let i = 0; i < 3; i++) {
      const res = await h.client.check(request());
      expect(res.status.code).toBe(14);
      expect(res.denied_response?.status.code).toBe(503);
      expect(res.ok_response).toBeFalsy();
    }
    expect(h.answers).toEqual([1, 1, 1]);
  });

  it("answers when the pipeline rejects or throws synchronously", async () => {
    for (const evaluate of [() => Promise.reject(new Error("async boom")), boom]) {
      const h = await serve({ pipeline: { evaluate } });
      const res = await h.client.check(request());
      expect(reasonsOf(res.denied_response?.body)).toEqual(["failure.internal"]);
      expect(h.answers).toEqual([1]);
    }
  });

  it("answers when the snapshot, the in-flight gauge or the observer throws", async () => {
    for (const over of [
      { runtime: (): PolicySnapshot => boom() },
      { inflight: boom },
      { onDecision: boom },
    ] satisfies Partial<CheckHandlerDeps>[]) {
      const h = await serve(over);
      const res = await h.client.check(request());
      expect([0, 14]).toContain(res.status.code); // the observer's failure does not change it
      expect(h.answers).toEqual([1]);
    }
  });
});
