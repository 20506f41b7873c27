/**
 * The benchmark's requests: what Envoy sends for `GET /v1/items` from a browser with a device
 * id, signed by the dev key, checked against bench/policy.yaml. Shared by `npm run bench` and the
 * in-process benchmarks so every number is about the same request.
 */

import type { MethodDefinition } from "@grpc/grpc-js";
import { buildCheckRequest } from "../src/cli/check.js";
import { type DevKeys, loadOrCreateDevKeys, mintDevToken } from "../src/cli/dev-keys.js";
import type { CheckRequestMessage } from "../src/transport/check-request.js";
import type { CheckResponseMessage } from "../src/transport/check-response.js";
import { loadProtos } from "../src/transport/protos.js";

export const BENCH_POLICY = new URL("../../bench/policy.yaml", import.meta.url).pathname;

/** The settings every bench server runs with (plus its own store, telemetry and address). */
export function benchEnv(keysDir: string): Record<string, string> {
  return {
    RISKGATE_DEV: "true",
    RISKGATE_DEV_KEYS_DIR: keysDir,
    RISKGATE_POLICY: BENCH_POLICY,
    RISKGATE_LOG_LEVEL: "info",
    RISKGATE_GEO: "embedded",
    RISKGATE_METRICS_ADDRESS: "off",
    // the gRPC rows need no forward-auth listener (the HTTP rows turn theirs on)
    RISKGATE_HTTP_ADDRESS: "off",
    RISKGATE_AUDIT: "false",
  };
}

export interface Subject {
  readonly sub: string;
  readonly org: string;
  readonly ip: string;
}

/** The n-th of many distinct callers: its own subject, one of 100 orgs, its own IPv4 address. */
export function subjectAt(n: number): Subject {
  // 81.0.0.0/8 and up: public unicast space the embedded geo database locates in Europe
  const ip = `${81 + (n >>> 16)}.${(n >>> 8) & 255}.${n & 255}.${1 + (n % 200)}`;
  return { sub: `bench-user-${n}`, org: `bench-org-${n % 100}`, ip };
}

export const SINGLE: Subject = { sub: "bench-user", org: "bench", ip: "81.2.69.160" };

export function benchKeys(dir: string): Promise<DevKeys> {
  return loadOrCreateDevKeys(dir);
}

/** A token for the subject: enterprise tier, MFA, valid for `ttlSeconds`. */
export function benchToken(keys: DevKeys, who: Subject, ttlSeconds = 4 * 3600): Promise<string> {
  return mintDevToken(keys, {
    iss: "https://riskgate.dev/demo",
    aud: "demo-api",
    sub: who.sub,
    tier: "enterprise",
    org: who.org,
    amr: ["pwd", "mfa"],
    ttlSeconds,
  });
}

/** The CheckRequest Envoy sends for the subject's `GET /v1/items?limit=20`. */
export function benchRequest(
  token: string,
  who: Subject,
  device = "laptop-42",
): CheckRequestMessage {
  return buildCheckRequest({
    method: "GET",
    path: "/v1/items?limit=20",
    host: "api.example.com",
    ip: who.ip,
    token,
    headers: {
      accept: "application/json",
      "x-forwarded-proto": "https",
      "x-request-id": "7f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8",
      "x-device-id": device,
      "user-agent":
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    },
  });
}

/** The Check method's own (de)serializers, as the server and its clients use them. */
export function checkCodec(): MethodDefinition<CheckRequestMessage, CheckResponseMessage> {
  const method = loadProtos().authorization.service.Check;
  if (method === undefined) throw new Error("ext_authz proto has no Check method");
  return method as MethodDefinition<CheckRequestMessage, CheckResponseMessage>;
}

const checkMethod = checkCodec();

/** The request serialized as riskgate's own gRPC client would put it on the wire. */
export function serialize(request: CheckRequestMessage): Buffer {
  return checkMethod.requestSerialize(request);
}

/** A gRPC length-prefixed message (uncompressed). */
export function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}
