import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest } from "../../src/access/request.js";
import { createScoringWebhook } from "../../src/external/scoring-webhook.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { createSubjectHasher } from "../../src/telemetry/subject-hash.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

/**
 * A scoring service on port 0: answers what `reply` says (or never, with `hold`), records what
 * it was sent. Each test has its own, closed after it: a request still on its way when a test
 * ends reaches a closed port, never the next test's service.
 */
interface Service {
  reply: { status: number; body: string; hold: boolean };
  received: { body: Record<string, unknown>; headers: Record<string, unknown> }[];
  url: string;
}

let server: Server;
let service: Service;

beforeEach(async () => {
  const own: Service = {
    reply: { status: 200, body: JSON.stringify({ score: 95, reasons: ["mule"] }), hold: false },
    received: [],
    url: "",
  };
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      own.received.push({
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
        headers: req.headers,
      });
      const { status, body, hold } = own.reply;
      // held: answered never (the connection is closed with the server after the test)
      if (!hold) res.writeHead(status, { "content-type": "application/json" }).end(body);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  own.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/score`;
  service = own;
});

afterEach(async () => {
  const closed = once(server, "close");
  server.close();
  server.closeAllConnections();
  await closed;
});

/**
 * The policy under test. The webhook's timeout and the Check's budget are far above what a
 * local answer takes even on a loaded machine, so "ok" and "status" never turn into
 * "timeout"; the timeout test holds the answer instead of racing a delay against them.
 */
function policyText(url: string, over = "", timeoutMs = 5000) {
  return `
version: 1
identity: { issuers: ["https://issuer.test"], audiences: ["api"] }
tiers:
  free:
    entitlements: [api.read, api.write]
    risk: { challenge_at: 40, deny_at: 80 }
routes:
  - name: checkout
    match: { path: { prefix: /v1/checkout } }
    entitlement: api.write
    scoring_webhook: true
    failure: safe_methods_only
  - name: api
    match: { path: { prefix: /v1/ } }
    entitlement: api.read
signals:
  # one token from test networks in two countries: places (on by default) would score it; the
  # webhook is what these tests are about
  places: { enabled: false }
  scoring_webhook:
    enabled: true
    url: ${url}
    timeout_ms: ${timeoutMs}
    breaker: { failures: 3, open_seconds: 10 }
${over}
failure: { mode: closed, budget_ms: 10000 }
`;
}

const claims = { alice: { sub: "alice", tier: "free", org: "acme", amr: ["mfa"] } };

function setup(over = "", timeoutMs?: number) {
  let now = 0;
  const policy = parsePolicy(policyText(service.url, over, timeoutMs), "t.yaml");
  const runtime = policySnapshotOf(policy, fakeIdentifier(claims));
  const pipeline = createPipeline({
    store: createMemoryStore(),
    clock: () => TEST_NOW,
    pseudonym: createSubjectHasher("test-salt"),
    webhook: { now: () => now },
  });
  return {
    evaluate: (req: AccessRequest) => pipeline.evaluate(runtime, req),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function checkout(method = "POST", clientIp = "203.0.113.7") {
  return accessRequest({
    method,
    path: "/v1/checkout",
    clientIp,
    headers: new Map([
      ["authorization", "Bearer alice"],
      ["user-agent", "Mozilla/5.0"],
      ["cookie", "session=secret"],
    ]),
  });
}

describe("the scoring webhook", () => {
  it("sends the request's context, pseudonymised and without credentials, and scores its answer", async () => {
    const d = await setup().evaluate(checkout());
    expect(service.received).toHaveLength(1);
    const { body, headers } = service.received[0] as Service["received"][number];
    expect(body).toMatchObject({
      subject: createSubjectHasher("test-salt")("alice"),
      org: createSubjectHasher("test-salt")("acme"),
      tier: "free",
      route: "checkout",
      method: "POST",
      path: "/v1/checkout",
      client_ip: "203.0.113.7",
      network: "203.0.113.0/24",
      user_agent: "Mozilla/5.0",
      anonymous: false,
    });
    expect(JSON.stringify(body)).not.toMatch(/alice|Bearer|secret/);
    expect(headers.authorization).toBeUndefined();
    expect(headers.cookie).toBeUndefined();
    // default bands: 90-100 adds 60 points: over deny_at? 60 < 80, over challenge_at 40
    expect(d.verdict.reasons).toContainEqual({
      code: "external.webhook",
      points: 60,
      detail: "score=95 (mule)",
    });
    expect(d.verdict.kind).toBe("challenge");
    expect(d.timings.webhook?.outcome).toBe("ok");
  });

  it("sends the subject as is only when the policy says so", async () => {
    await setup("    plain_subject: true").evaluate(checkout());
    expect(service.received[0]?.body).toMatchObject({ subject: "alice", org: "acme" });
  });

  it("takes points as given", async () => {
    service.reply.body = JSON.stringify({ points: 90 });
    const d = await setup().evaluate(checkout());
    expect(d.verdict.kind).toBe("deny");
    expect(d.verdict.reasons).toContainEqual({
      code: "external.webhook",
      points: 90,
      detail: "points=90",
    });
  });

  it("is never called on routes that do not ask for it", async () => {
    const d = await setup().evaluate(
      accessRequest({ headers: new Map([["authorization", "Bearer alice"]]) }),
    );
    expect(d.verdict.kind).toBe("allow");
    expect(service.received).toHaveLength(0);
    expect(d.timings.webhook).toBeUndefined();
  });

  it("is never called when the pipeline turns it off (replay)", async () => {
    const policy = parsePolicy(policyText(service.url), "t.yaml");
    const pipeline = createPipeline({
      store: createMemoryStore(),
      clock: () => TEST_NOW,
      scoringWebhook: false,
    });
    const d = await pipeline.evaluate(policySnapshotOf(policy, fakeIdentifier(claims)), checkout());
    expect(d.verdict.kind).toBe("allow");
    expect(service.received).toHaveLength(0);
  });

  it("answers from its cache for the same subject and network", async () => {
    const { evaluate } = setup();
    await evaluate(checkout("POST", "203.0.113.7"));
    const again = await evaluate(checkout("POST", "203.0.113.99"));
    expect(service.received).toHaveLength(1);
    expect(again.timings.webhook?.outcome).toBe("cached");
    expect(again.verdict.kind).toBe("challenge");
    // another network is another question
    await evaluate(checkout("POST", "198.51.100.7"));
    expect(service.received).toHaveLength(2);
  });

  it("past its time budget follows the route's failure mode", async () => {
    service.reply.hold = true;
    const { evaluate } = setup("", 50);
    const post = await evaluate(checkout("POST"));
    expect(post.verdict).toMatchObject({ kind: "deny", cause: "failure" });
    expect(post.verdict.reasons).toContainEqual({
      code: "failure.webhook",
      points: 0,
      detail: "timeout; safe_methods_only",
    });
    expect(post.timings.webhook?.outcome).toBe("timeout");
    // a safe method passes, the failure on record
    const get = await evaluate(checkout("GET", "198.51.100.7"));
    expect(get.verdict.kind).toBe("allow");
    expect(get.verdict.reasons.map((r) => r.code)).toContain("failure.webhook");
  });

  it("opens its breaker after repeated 500s, then half-opens and closes on a good answer", async () => {
    service.reply = { status: 500, body: "oops", hold: false };
    const { evaluate, advance } = setup();
    for (let i = 0; i < 3; i++) {
      const d = await evaluate(checkout("POST", `192.0.2.${i}`));
      expect(d.timings.webhook?.outcome).toBe("status");
    }
    expect(service.received).toHaveLength(3);
    // open: refused at once, the service is not called
    const open = await evaluate(checkout("POST", "192.0.2.10"));
    expect(open.timings.webhook?.outcome).toBe("breaker_open");
    expect(open.verdict).toMatchObject({ kind: "deny", cause: "failure" });
    expect(service.received).toHaveLength(3);
    // after open_seconds one probe goes out; it fails: open again
    advance(10_000);
    await evaluate(checkout("POST", "192.0.2.11"));
    expect(service.received).toHaveLength(4);
    expect((await evaluate(checkout("POST", "192.0.2.12"))).timings.webhook?.outcome).toBe(
      "breaker_open",
    );
    // the service recovers: the next probe closes the breaker
    service.reply = { status: 200, body: JSON.stringify({ score: 10 }), hold: false };
    advance(10_000);
    const probe = await evaluate(checkout("POST", "192.0.2.13"));
    expect(probe.timings.webhook?.outcome).toBe("ok");
    expect(probe.verdict.kind).toBe("allow");
    // closed again: a new question (another network) goes out
    expect((await evaluate(checkout("POST", "198.51.100.14"))).timings.webhook?.outcome).toBe("ok");
  });

  it("treats an answer outside the contract as a failure", async () => {
    const client = createScoringWebhook({
      url: service.url,
      timeoutMs: 5000,
      cacheTtlMs: 0,
      cacheMax: 1,
      breakerFailures: 100,
      breakerOpenMs: 1000,
    });
    const body = { subject: "s" } as never;
    for (const bad of ["not json", "[]", '{"score": 101}', '{"points": 1.5}', '{"reasons": []}']) {
      service.reply.body = bad;
      expect(await client.score(body, "k")).toMatchObject({ kind: "failed", failure: "malformed" });
    }
    service.reply.body = JSON.stringify({ score: 1, reasons: ["x".repeat(20_000)] });
    expect(await client.score(body, "k")).toMatchObject({ kind: "failed", failure: "malformed" });
    service.reply.status = 302;
    service.reply.body = "{}";
    expect(await client.score(body, "k")).toMatchObject({ kind: "failed", failure: "status" });
    service.reply.status = 200;
    service.reply.body = '{"score": 12, "reasons": ["ok", 5, "<script>"]}';
    expect(await client.score(body, "k")).toEqual({
      kind: "ok",
      cached: false,
      answer: { score: 12, reasons: ["ok"] },
    });
  });
});
