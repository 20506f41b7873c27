import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { generateKeyPair, SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import {
  createTelemetry,
  type DecisionEvent,
  type Telemetry,
  type TelemetryOptions,
} from "../../src/telemetry/telemetry.js";
import { accessRequest } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const KEY = "audit-test-key";
const demoText = readFileSync("policies/demo.yaml", "utf8");
const hmac = (v: string) => createHmac("sha256", KEY).update(v).digest("hex").slice(0, 16);

/** Real signed JWTs: the audit must never print them, whatever carries them. */
let bearer: string;
let sessionCookie: string;
beforeAll(async () => {
  const { privateKey } = await generateKeyPair("ES256");
  const sign = (sub: string) =>
    new SignJWT({ tier: "free", org: "acme-corp" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setSubject(sub)
      .setIssuedAt(NOW / 1000)
      .setExpirationTime(NOW / 1000 + 600)
      .sign(privateKey);
  bearer = await sign("subject-eve-7");
  sessionCookie = await sign("subject-eve-8");
});

const claims = () => ({
  [bearer]: { sub: "subject-eve-7", tier: "free", org: "acme-corp", amr: ["pwd"] },
  freeMfa: { sub: "u-free", tier: "free", org: "acme", amr: ["mfa"] },
  entPwd: { sub: "u-ent", tier: "enterprise", org: "big", amr: ["pwd"], auth_time: NOW / 1000 },
});

async function decide(
  options: {
    token?: string;
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    metadata?: Record<string, string>;
    policyText?: string;
  } = {},
): Promise<DecisionEvent> {
  const runtime = policySnapshotOf(
    parsePolicy(options.policyText ?? demoText, "demo.yaml"),
    fakeIdentifier(claims()),
  );
  const pipeline = createPipeline({ store: createMemoryStore(), clock: () => NOW });
  const headers = new Map(Object.entries(options.headers ?? {}));
  if (options.token) headers.set("authorization", `Bearer ${options.token}`);
  const req = accessRequest({
    id: "req-42",
    method: options.method ?? "GET",
    path: options.path ?? "/v1/items",
    headers,
  });
  const metadata = options.metadata ?? {};
  const decision = await pipeline.evaluate(runtime, req);
  return { decision, req, traceHeader: (name) => metadata[name], durationNs: 123_456n };
}

interface Rig {
  telemetry: Telemetry;
  raw: string[];
  lines: () => Record<string, unknown>[];
}

const live: Telemetry[] = [];
afterEach(async () => {
  for (const t of live.splice(0)) await t.shutdown();
});

async function audited(
  audit: Partial<TelemetryOptions["audit"]> = {},
  tracing?: TelemetryOptions["tracing"],
): Promise<Rig> {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      raw.push(String(chunk));
      done();
    },
  });
  const telemetry = createTelemetry(
    {
      tracing: tracing ?? { enabled: false, subjectAttribute: "hash" },
      metrics: { enabled: false },
      audit: { enabled: true, allowSampleRate: 1, subject: "hash", destination, ...audit },
      subjectHashKey: KEY,
    },
    { logger: createLogger("silent") },
  );
  await telemetry.start();
  live.push(telemetry);
  const lines = () =>
    raw
      .join("")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { telemetry, raw, lines };
}

describe("one audit line per decision", () => {
  it("records what was decided, why, for whom, where and under which policy", async () => {
    const { telemetry, lines } = await audited();
    const event = await decide({
      token: bearer,
      metadata: { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` },
    });
    telemetry.onDecision(event);
    const [line, ...more] = lines();
    expect(more).toEqual([]);
    expect(line).toEqual({
      level: 30,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      log: "audit",
      event: "decision",
      request_id: "req-42",
      trace_id: TRACE,
      decision: "allow",
      score: 10,
      risk_level: "low",
      reasons: [{ code: "auth.weak", points: 10, detail: "amr=pwd" }],
      tier: "free",
      entitlement: "api.read",
      route: "api-read",
      subject: hmac("subject-eve-7"),
      org: hmac("acme-corp"),
      caller: { tier: "free", entitlements: [], amr: ["pwd"] },
      identity_source: "jwt",
      client_ip: "203.0.113.7",
      client_class: "browser",
      ua_class: "none",
      method: "GET",
      host: "api.example.com",
      path: "/v1/items",
      received_at: "2026-11-22T12:00:00.000Z",
      policy_version: event.decision.policyVersion,
      mode: "enforce",
      failure_mode: "closed",
      latency_ms: 0.123456,
    });
  });

  it("caps the request id, method and host a client chose, whatever their length", async () => {
    const { telemetry, lines } = await audited();
    const event = await decide({ token: bearer });
    const long = "x".repeat(100_000);
    const req = event.req as NonNullable<typeof event.req>;
    telemetry.onDecision({
      ...event,
      decision: {
        ...event.decision,
        verdict: { ...event.decision.verdict, requestId: `id-${long}` },
      },
      req: { ...req, method: `GET${long}`, host: `h${long}.example.com`, path: `/p/${long}` },
    });
    const line = lines()[0] as Record<string, string>;
    expect(line.request_id).toHaveLength(128);
    expect(line.request_id?.endsWith("…")).toBe(true);
    expect(line.method).toHaveLength(16);
    expect(line.host).toHaveLength(255);
    expect(line.path).toHaveLength(2048);
    expect(JSON.stringify(line).length).toBeLessThan(4096);
  });

  it("writes subject and org as they are when asked to", async () => {
    const { telemetry, lines } = await audited({ subject: "plain" });
    telemetry.onDecision(await decide({ token: bearer }));
    expect(lines()[0]).toMatchObject({ subject: "subject-eve-7", org: "acme-corp" });
  });

  it("takes trace and span ids from riskgate's own span when tracing is on", async () => {
    const exporter = new InMemorySpanExporter();
    const { telemetry, lines } = await audited(
      {},
      { enabled: true, exporter, subjectAttribute: "off" },
    );
    telemetry.onDecision(
      await decide({ token: "freeMfa", headers: { b3: `${TRACE}-a2fb4a1d1a96d312-1` } }),
    );
    await telemetry.flush();
    const span = exporter.getFinishedSpans().find((s) => s.name === "riskgate.check");
    expect(lines()[0]).toMatchObject({ trace_id: TRACE, span_id: span?.spanContext().spanId });
  });

  it("finds the trace id in B3 headers without tracing", async () => {
    const { telemetry, lines } = await audited();
    telemetry.onDecision(
      await decide({ token: "freeMfa", metadata: { "x-b3-traceid": "a3ce929d0e0e4736" } }),
    );
    telemetry.onDecision(
      await decide({ token: "freeMfa", headers: { b3: `${TRACE}-a2fb4a1d1a96d312` } }),
    );
    telemetry.onDecision(await decide({ token: "freeMfa", headers: { traceparent: "garbage" } }));
    expect(lines().map((l) => l.trace_id)).toEqual([
      "0000000000000000a3ce929d0e0e4736",
      TRACE,
      undefined,
    ]);
  });

  it("records the client's country once the decision carries it", async () => {
    const { telemetry, lines } = await audited();
    const event = await decide({ token: "freeMfa" });
    const located = { ...event.decision, country: "DE" };
    telemetry.onDecision({ ...event, decision: located });
    expect(lines()[0]).toMatchObject({ country: "DE" });
  });
});

describe("sampling", () => {
  it("samples allows but always writes denials and challenges", async () => {
    const draws = [0.9, 0.1];
    const { telemetry, lines } = await audited({
      allowSampleRate: 0.5,
      random: () => draws.shift() ?? 0.99,
    });
    telemetry.onDecision(await decide({ token: "freeMfa" })); // allow, draw 0.9: left out
    telemetry.onDecision(await decide({ token: "freeMfa" })); // allow, draw 0.1: written
    telemetry.onDecision(await decide({ token: "freeMfa", path: "/billing" })); // deny
    telemetry.onDecision(await decide({ token: "entPwd", path: "/admin/users" })); // challenge
    expect(lines().map((l) => [l.decision, l.sample_rate])).toEqual([
      ["allow", 0.5],
      ["deny", undefined],
      ["challenge", undefined],
    ]);
  });

  it("with rate 0 writes no allow at all, and never draws for the rest", async () => {
    let draws = 0;
    const { telemetry, lines } = await audited({
      allowSampleRate: 0,
      random: () => {
        draws++;
        return 0;
      },
    });
    telemetry.onDecision(await decide({ token: "freeMfa" }));
    telemetry.onDecision(await decide({ token: "freeMfa", path: "/billing" }));
    expect(lines().map((l) => l.decision)).toEqual(["deny"]);
    expect(draws).toBe(1);
  });
});

describe("shadow mode", () => {
  it("allows while the line records the would-be denial, even with allows sampled out", async () => {
    const { telemetry, lines } = await audited({ allowSampleRate: 0 });
    const event = await decide({
      token: "freeMfa",
      path: "/billing/invoices",
      policyText: demoText.replace("mode: enforce", "mode: shadow"),
    });
    expect(event.decision.verdict.kind).toBe("allow");
    telemetry.onDecision(event);
    expect(lines()).toEqual([
      expect.objectContaining({
        decision: "allow",
        would_be: "deny",
        mode: "shadow",
        reasons: [
          { code: "license.entitlement_missing", points: 0, detail: "needs billing.manage" },
        ],
      }),
    ]);
  });
});

describe("credentials never reach a line", () => {
  it("keeps out the bearer token, session cookie, API key and, hashed, subject and org", async () => {
    const { telemetry, raw } = await audited();
    const apiKey = "sk_live_9f8e7d6c5b4a";
    const headers = {
      cookie: `rg_session=${sessionCookie}; theme=dark`,
      "x-api-key": apiKey,
      "proxy-authorization": `Basic ${Buffer.from("user:hunter2").toString("base64")}`,
      traceparent: `00-${TRACE}-00f067aa0ba902b7-01`,
    };
    telemetry.onDecision(await decide({ token: bearer, headers }));
    telemetry.onDecision(await decide({ token: bearer, headers, path: "/billing/x" }));
    telemetry.onDecision(await decide({ token: "not-a-known-token", headers }));
    // a token pasted into a path (magic links, signed URLs) is masked too
    telemetry.onDecision(await decide({ token: bearer, headers, path: `/v1/login/${bearer}` }));
    const text = raw.join("");
    expect(text.split("\n").filter(Boolean)).toHaveLength(4);
    for (const secret of [
      bearer,
      bearer.split(".")[2] as string,
      sessionCookie,
      apiKey,
      "hunter2",
      Buffer.from("user:hunter2").toString("base64"),
      "subject-eve-7",
      "acme-corp",
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('"path":"/v1/login/[redacted]"');
  });
});

describe("asynchronous destinations", () => {
  it("buffers the second destination file off the decision path and flushes it on shutdown", async () => {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-audit-"));
    const file = join(dir, "nested", "audit.log");
    const { telemetry, lines } = await audited({ file });
    const events = [
      await decide({ token: "freeMfa" }),
      await decide({ token: "freeMfa", path: "/billing" }),
    ];
    for (const event of events) telemetry.onDecision(event);
    // recording wrote nothing to disk itself (no event-loop turn since): libuv writes later
    expect(existsSync(file) ? readFileSync(file, "utf8") : "").toBe("");
    await telemetry.shutdown();
    const written = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(written).toEqual(lines());
    expect(written.map((l) => l.decision)).toEqual(["allow", "deny"]);
  });
});
