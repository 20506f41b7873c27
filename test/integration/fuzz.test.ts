import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCheckRequest } from "../../src/cli/check.js";
import type { CheckRequestMessage } from "../../src/transport/check-request.js";
import { toAccessRequest } from "../../src/transport/check-request.js";
import type { CheckResponseMessage } from "../../src/transport/check-response.js";
import { ServingStatus } from "../../src/transport/health.js";
import { PROTO_OPTIONS } from "../../src/transport/protos.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * So that malformed-input defects do not come back: a bounded, seeded fuzz of CheckRequests on
 * the wire, structured (protobuf-encoded from protos/) and byte-mutated (sent as raw bytes). No
 * request carries a valid token, so no answer may be OK unless the request names the demo
 * policy's one `auth: none` route; every call is answered; health stays SERVING.
 */

const SEED = 20_261_123;
/** Requests sent concurrently per property run. */
const BATCH = 16;
const STRUCTURED_RUNS = 125; // x BATCH = 2000 requests
const MUTATED_RUNS = 125; // x BATCH = 2000 requests
const DEADLINE_MS = 3000;

interface Method {
  readonly path: string;
  requestSerialize(value: unknown): Buffer;
  requestDeserialize(bytes: Buffer): CheckRequestMessage;
  responseDeserialize(bytes: Buffer): CheckResponseMessage;
}

const definition = protoLoader.loadSync(["envoy/service/auth/v3/external_auth.proto"], {
  ...PROTO_OPTIONS,
});
const check = (definition["envoy.service.auth.v3.Authorization"] as Record<string, unknown>)
  .Check as Method;

/** A client that sends bytes as they are (a pass-through serializer) and decodes the answer. */
const RawAuthorization = grpc.makeGenericClientConstructor(
  {
    Check: {
      path: check.path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (value: unknown) => value as Buffer,
      responseDeserialize: (bytes: Buffer) => check.responseDeserialize(bytes),
    },
  },
  "RawAuthorization",
);

type Answer = { kind: "response"; res: CheckResponseMessage } | { kind: "error"; code: number };

let s: TestServer;
let raw: grpc.Client & {
  Check(
    bytes: Buffer,
    options: grpc.CallOptions,
    done: (err: grpc.ServiceError | null, res?: CheckResponseMessage) => void,
  ): void;
};
let valid: string;
const tally = { sent: 0, ok: 0, denied: 0, errors: 0, undecodable: 0 };
/** gRPC status codes of calls that failed, by code. */
const errorCodes: Record<number, number> = {};

function send(bytes: Buffer): Promise<Answer> {
  return new Promise((resolve) => {
    raw.Check(bytes, { deadline: Date.now() + DEADLINE_MS }, (err, res) => {
      resolve(
        err
          ? { kind: "error", code: err.code }
          : { kind: "response", res: res as CheckResponseMessage },
      );
    });
  });
}

/** Whether an OK answer is legitimate: the request names or reaches the `auth: none` route. */
function mayBeAllowed(bytes: Buffer): boolean {
  let msg: CheckRequestMessage;
  try {
    msg = check.requestDeserialize(bytes);
  } catch {
    tally.undecodable++;
    return false;
  }
  try {
    const req = toAccessRequest(msg, { trustedHops: 0, now: Date.now() });
    const named = req.contextExtensions.riskgate_route;
    const ROUTES = ["health", "admin-users", "billing", "reports-export", "api-write", "api-read"];
    if (named !== undefined && ROUTES.includes(named)) return named === "health";
    return req.path === "/healthz";
  } catch {
    return false; // no HTTP attributes: a malformed request is never allowed
  }
}

async function expectSafe(batch: Buffer[]): Promise<void> {
  tally.sent += batch.length;
  const answers = await Promise.all(batch.map(send));
  answers.forEach((answer, i) => {
    const bytes = batch[i] as Buffer;
    // every call is answered in time (a deadline here is a call the server left hanging)
    if (answer.kind === "error") {
      tally.errors++;
      errorCodes[answer.code] = (errorCodes[answer.code] ?? 0) + 1;
      expect(answer.code, "call answered").not.toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(answer.code, "server reachable").not.toBe(grpc.status.UNAVAILABLE);
      return;
    }
    const ok = answer.res.status?.code === grpc.status.OK || !answer.res.status?.code;
    if (ok && answer.res.denied_response == null) {
      tally.ok++;
      if (!mayBeAllowed(bytes)) {
        throw new Error(`OK without a valid token: ${bytes.toString("base64")}`);
      }
    } else {
      tally.denied++;
    }
  });
}

// ---- structured CheckRequests ----

const PATHS = [
  "/v1/items",
  "/v1/reports/7/export",
  "/admin/users",
  "/billing/invoices",
  "/healthz",
  "/healthz/../admin/users",
  "//v1//items",
  "/v1/%2e%2e/admin/users",
  "/HEALTHZ",
  "/healthz?x=/admin",
  "/v1/items#/healthz",
  "",
];

/** One change to a string: replace, insert or delete one character. */
function mutateString(base: string): fc.Arbitrary<string> {
  const at = fc.nat({ max: Math.max(0, base.length - 1) });
  const ch = fc.oneof(
    fc.constantFrom(...'AZaz09-_.+/= \t"%'),
    fc.string({ minLength: 1, maxLength: 1, unit: "binary" }),
  );
  return fc.oneof(
    fc.tuple(at, ch).map(([i, c]) => base.slice(0, i) + c + base.slice(i + 1)),
    fc.tuple(at, ch).map(([i, c]) => base.slice(0, i) + c + base.slice(i)),
    at.map((i) => base.slice(0, i) + base.slice(i + 1)),
  );
}

/**
 * Whether the server could read `value` as the valid token itself (trimmed, unquoted): such
 * credentials are not generated, so every request lacks a valid token.
 */
const isValidToken = (value: string) =>
  value
    .trim()
    .replace(/^"(.*)"$/, "$1")
    .trim() === valid;

function credentialArb(): fc.Arbitrary<string> {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const [h, p, sig] = valid.split(".") as [string, string, string];
  return fc
    .oneof(
      mutateString(valid),
      fc.constant(`${h}.${p}.${sig}==`),
      fc.constant(`${h}.${p}.${sig.replaceAll("-", "+").replaceAll("_", "/")}`),
      fc.constant(`${b64({ alg: "none" })}.${p}.`),
      fc.constant(`${b64({ alg: "HS256", kid: "dev" })}.${p}.${sig}`),
      fc.constant(`${h}.${b64({ sub: "root", tier: "enterprise", exp: 9e15 })}.${sig}`),
      fc.string({ maxLength: 64 }),
      fc.string({ maxLength: 256, unit: "binary" }),
      fc.constant("x".repeat(9000)),
    )
    .filter((token) => !isValidToken(token));
}

const headerArb = () =>
  fc.record(
    {
      authorization: fc.tuple(
        fc.constantFrom("Bearer ", "bearer ", "BEARER\t", "Bearer  ", "Basic ", "", "Bearer"),
        credentialArb(),
      ),
      cookie: credentialArb(),
      extra: fc.dictionary(
        fc.oneof(
          fc.constantFrom(
            "x-riskgate-tier",
            "x-riskgate-subject",
            "x-forwarded-for",
            "x-device-id",
            "host",
            ":path",
          ),
          fc.string({ minLength: 1, maxLength: 12 }),
        ),
        fc.string({ maxLength: 64 }),
        { maxKeys: 4 },
      ),
    },
    { requiredKeys: ["extra"] },
  );

const structuredArb = () =>
  fc.record(
    {
      method: fc.oneof(
        fc.constantFrom("GET", "POST", "DELETE", "OPTIONS", "TRACE"),
        fc.string({ maxLength: 8 }),
      ),
      path: fc.oneof(fc.constantFrom(...PATHS), fc.string({ maxLength: 40 })),
      ip: fc.oneof(
        fc.ipV4(),
        fc.constantFrom("2001:db8::1", "::ffff:10.0.0.1", "fe80::1%eth0", "::"),
        fc.string({ maxLength: 20 }),
      ),
      headers: headerArb(),
      route: fc.constantFrom("admin-users", "billing", "api-read", "nope", "../health"),
      jwtAuthn: fc.boolean(),
      useHeaderMap: fc.boolean(),
    },
    { requiredKeys: ["method", "path", "ip", "headers"] },
  );

type Structured = ReturnType<typeof structuredArb> extends fc.Arbitrary<infer T> ? T : never;

function encodeStructured(c: Structured): Buffer {
  const headers: Record<string, string> = { ...c.headers.extra };
  if (c.headers.authorization !== undefined) {
    const [scheme, token] = c.headers.authorization;
    headers.authorization = `${scheme}${token}`;
  }
  if (c.headers.cookie !== undefined) {
    headers.cookie = `rg_session=${c.headers.cookie}`;
  }
  const req = buildCheckRequest({
    method: c.method,
    path: c.path,
    host: "api.example.com",
    ip: c.ip,
    headers,
  });
  const attributes = req.attributes as Record<string, unknown> & {
    request: { http: Record<string, unknown> };
  };
  if (c.route !== undefined) attributes.context_extensions = { riskgate_route: c.route };
  if (c.jwtAuthn) {
    // the demo policy does not trust jwt_authn: injected "verified" claims must count for nothing
    attributes.metadata_context = {
      filter_metadata: {
        "envoy.filters.http.jwt_authn": {
          fields: {
            jwt_payload: {
              structValue: {
                fields: {
                  sub: { stringValue: "root" },
                  tier: { stringValue: "enterprise" },
                  exp: { numberValue: 9e9 },
                },
              },
            },
          },
        },
      },
    };
  }
  if (c.useHeaderMap) {
    const http = attributes.request.http;
    http.header_map = {
      headers: Object.entries(http.headers as Record<string, string>).map(([key, value]) => ({
        key,
        raw_value: Buffer.from(value, "latin1"),
      })),
    };
    delete http.headers;
  }
  return check.requestSerialize(req);
}

// ---- byte-mutated CheckRequests ----

type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; byte: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; count: number }
  | { op: "truncate"; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ maxLength: 8 }),
  }),
  fc.record({
    op: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

function mutate(base: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(base);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    switch (m.op) {
      case "flip":
        if (out.length > 0) out[at] = (out[at] as number) ^ (1 << m.bit);
        break;
      case "set":
        if (out.length > 0) out[at] = m.byte;
        break;
      case "insert":
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      case "delete":
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
        break;
      case "truncate":
        out = out.subarray(0, at);
        break;
    }
  }
  return out;
}

describe("fuzzed CheckRequests on the wire", () => {
  let bases: Buffer[];

  beforeAll(async () => {
    s = await startTestServer();
    raw = new RawAuthorization(
      `127.0.0.1:${s.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as typeof raw;
    valid = await s.token({ sub: "fuzz-pro", tier: "enterprise", amr: ["mfa"] });
    const [h, p, sig] = valid.split(".") as [string, string, string];
    const forged = `${h}.${p}.${sig.slice(0, -4)}AAAA`;
    const request = (path: string, headers: Record<string, string>) =>
      check.requestSerialize(
        buildCheckRequest({
          method: "GET",
          path,
          host: "api.example.com",
          ip: "192.0.2.9",
          headers,
        }),
      );
    bases = [
      request("/admin/users", { authorization: `Bearer ${forged}` }),
      request("/v1/items", { cookie: `rg_session=${forged}` }),
      request("/billing/x", {}),
      request("/v1/reports/1/export", { authorization: "Bearer not.a.jwt" }),
    ];
  });
  afterAll(async () => {
    raw.close();
    await s.stop();
  });

  it("the control: the valid token is allowed and the forged one is not", async () => {
    const good = check.requestSerialize(
      buildCheckRequest({
        method: "GET",
        path: "/admin/users",
        host: "api.example.com",
        ip: "192.0.2.9",
        headers: { authorization: `Bearer ${valid}` },
      }),
    );
    const answer = await send(good);
    expect(answer).toMatchObject({ kind: "response", res: { status: { code: grpc.status.OK } } });
    for (const base of bases) {
      const a = await send(base);
      expect(a.kind === "response" && a.res.status.code !== grpc.status.OK).toBe(true);
    }
  });

  it("structured requests: no OK without a valid token, every call answered", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(structuredArb(), { minLength: BATCH, maxLength: BATCH }),
        async (cases) => {
          const batch = cases.map(encodeStructured).filter((b): b is Buffer => b !== undefined);
          await expectSafe(batch);
        },
      ),
      { seed: SEED, numRuns: STRUCTURED_RUNS, endOnFailure: true },
    );
  }, 60_000);

  it("byte-mutated and random requests: no OK without a valid token, every call answered", async () => {
    const caseArb = fc.oneof(
      {
        weight: 9,
        arbitrary: fc.tuple(
          fc.nat({ max: 3 }),
          fc.array(mutationArb, { minLength: 1, maxLength: 6 }),
        ),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(caseArb, { minLength: BATCH, maxLength: BATCH }), async (cases) => {
        const batch = cases.map((c) =>
          c instanceof Uint8Array ? Buffer.from(c) : mutate(bases[c[0]] as Buffer, c[1]),
        );
        await expectSafe(batch);
      }),
      { seed: SEED + 1, numRuns: MUTATED_RUNS, endOnFailure: true },
    );
  }, 60_000);

  it("leaves the server SERVING and answering", async () => {
    expect(await s.client.health()).toBe(ServingStatus.SERVING);
    expect(tally.sent).toBe((STRUCTURED_RUNS + MUTATED_RUNS) * BATCH);
    expect(tally.ok + tally.denied + tally.errors).toBe(tally.sent);
    // the demo policy allows only its health route without a token, so OK answers are rare
    expect(tally.denied).toBeGreaterThan(tally.ok);
    console.info(`fuzz: ${JSON.stringify(tally)} errors by code ${JSON.stringify(errorCodes)}`);
  });
});
