import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { Reason } from "../../src/access/reasons.js";
import type { AccessRequest } from "../../src/access/request.js";
import { loadSettings } from "../../src/config/settings.js";
import { PolicyError } from "../../src/errors.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { toAccessRequest } from "../../src/transport/check-request.js";
import { renderCheckResponse } from "../../src/transport/check-response.js";
import { httpToAccessRequest } from "../../src/transport/http-request.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const EXAMPLE = "policies/examples/external-scores.yaml";
const example = parsePolicy(readFileSync(EXAMPLE, "utf8"), EXAMPLE);

/** The example policy without the webhook (tested in test/integration/scoring-webhook.test.ts). */
const policy = parsePolicy(
  readFileSync(EXAMPLE, "utf8").replace(
    /scoring_webhook:\n {4}enabled: true/,
    "scoring_webhook:\n    enabled: false",
  ),
  EXAMPLE,
);

const claims = { alice: { sub: "alice", tier: "free", org: "acme", amr: ["mfa"] } };
// the edge a CDN request arrives through: in Cloudflare's 104.16.0.0/13
const CF_EDGE = "104.16.1.1";

function request(headers: Record<string, string>, over: Partial<AccessRequest> = {}) {
  return accessRequest({
    headers: new Map([["authorization", "Bearer alice"], ...Object.entries(headers)]),
    ...over,
  });
}

async function decide(req: AccessRequest) {
  const pipeline = createPipeline({ store: createMemoryStore(), clock: () => TEST_NOW });
  return pipeline.evaluate(policySnapshotOf(policy, fakeIdentifier(claims)), req);
}

const external = (d: { verdict: { reasons: readonly Reason[] } }) =>
  d.verdict.reasons.filter((r) => r.code.startsWith("external."));

describe("the external scores example policy", () => {
  it("validates, and strips every source header upstream", () => {
    expect(example.doc.signals.external_scores.sources.map((s) => s.name)).toEqual([
      "cloudflare_bot",
      "akamai_bot",
      "fastly_ngwaf",
      "aws_waf_bot",
      "envoy_fraud",
    ]);
    expect(example.doc.decisions.strip_headers).toEqual(
      expect.arrayContaining([
        "cf-bot-score",
        "x-akamai-bot-score",
        "x-sigsci-tags",
        "x-amzn-waf-bot",
      ]),
    );
    const req = request({ "cf-bot-score": "1", "x-sigsci-tags": "SQLI" });
    const rendered = renderCheckResponse(
      { kind: "allow", requestId: "r", score: 0, reasons: [] },
      req,
      example.doc.decisions,
    );
    expect(rendered.ok_response?.headers_to_remove).toEqual(["cf-bot-score", "x-sigsci-tags"]);
  });

  it("refuses a source with both a header and metadata, or a webhook slower than the budget", () => {
    const base = readFileSync(EXAMPLE, "utf8");
    expect(() =>
      parsePolicy(
        base.replace(
          "header: cf-bot-score",
          "header: cf-bot-score\n        metadata: { namespace: a, path: b }",
        ),
        "t.yaml",
      ),
    ).toThrow(/exactly one of header or metadata/);
    expect(() => parsePolicy(base.replace("timeout_ms: 40", "timeout_ms: 100"), "t.yaml")).toThrow(
      PolicyError,
    );
  });
});

describe("header sources", () => {
  it("score a trusted Cloudflare bot score by Cloudflare's bands and challenge", async () => {
    const d = await decide(request({ "cf-bot-score": "1" }, { edgeProxy: CF_EDGE }));
    expect(external(d)).toEqual([{ code: "external.bot", points: 60, detail: "cloudflare_bot=1" }]);
    expect(d.verdict.kind).toBe("challenge");
    expect(d.timings.external).toContainEqual({ source: "cloudflare_bot", outcome: "scored" });
  });

  it("let a likely human through untouched", async () => {
    const d = await decide(request({ "cf-bot-score": "87" }, { edgeProxy: CF_EDGE }));
    expect(external(d)).toEqual([]);
    expect(d.verdict.kind).toBe("allow");
    expect(d.timings.external).toContainEqual({ source: "cloudflare_bot", outcome: "unmapped" });
  });

  it("ignore and count a header that did not come through the trusted hops", async () => {
    // no edge proxy: the client connected to Envoy itself and wrote the header
    const direct = await decide(request({ "cf-bot-score": "1" }));
    expect(external(direct)).toEqual([]);
    expect(direct.verdict.kind).toBe("allow");
    expect(direct.timings.external).toContainEqual({
      source: "cloudflare_bot",
      outcome: "untrusted",
    });
    // through a proxy, but not one of Cloudflare's
    const other = await decide(request({ "cf-bot-score": "1" }, { edgeProxy: "198.51.100.1" }));
    expect(external(other)).toEqual([]);
    expect(other.timings.external).toContainEqual({
      source: "cloudflare_bot",
      outcome: "untrusted",
    });
  });

  it("ignore and count malformed values", async () => {
    for (const value of ["abc", "0", "100", "1e2", "12;drop", " "]) {
      const d = await decide(request({ "cf-bot-score": value }, { edgeProxy: CF_EDGE }));
      expect(external(d)).toEqual([]);
      expect(d.timings.external).toContainEqual({ source: "cloudflare_bot", outcome: "malformed" });
    }
  });

  it("map WAF labels to reasons a rule matches", async () => {
    const d = await decide(
      request({ "x-sigsci-tags": "NOUA, SQLI,SITE.CUSTOM" }, { edgeProxy: "198.51.100.1" }),
    );
    expect(external(d).map((r) => [r.code, r.points])).toEqual([
      ["external.fastly_ngwaf", 10],
      ["external.waf_attack", 50],
    ]);
    expect(d.verdict).toMatchObject({ kind: "deny" });
    expect(d.verdict.reasons.map((r) => r.code)).toContain("rule.waf-attack");
  });

  it("read the AWS WAF header the operator configured", async () => {
    const d = await decide(
      request({ "x-amzn-waf-bot": "automated" }, { edgeProxy: "198.51.100.1" }),
    );
    expect(external(d)).toEqual([
      { code: "external.bot", points: 40, detail: "aws_waf_bot=automated" },
    ]);
    expect(d.verdict.kind).toBe("challenge");
  });
});

describe("metadata sources", () => {
  it("read Envoy metadata from another filter, with no proxy check", async () => {
    const d = await decide(request({}, { metadata: { "com.example.fraud": { score: 0.93 } } }));
    expect(external(d)).toEqual([
      { code: "external.envoy_fraud", points: 40, detail: "envoy_fraud=0.93" },
    ]);
    expect(d.verdict.kind).toBe("challenge");
  });

  it("ignore and count metadata of the wrong type", async () => {
    const d = await decide(request({}, { metadata: { "com.example.fraud": { score: { x: 1 } } } }));
    expect(external(d)).toEqual([]);
    expect(d.timings.external).toContainEqual({ source: "envoy_fraud", outcome: "malformed" });
    expect(d.timings.external).toContainEqual({ source: "cloudflare_bot", outcome: "absent" });
  });
});

describe("the edge proxy a request came through", () => {
  it("is the outermost trusted hop, and absent when the chain is shorter than the hops", () => {
    const msg = {
      attributes: {
        source: { address: { socket_address: { address: "10.0.0.2" } } },
        request: {
          http: { headers: { ":path": "/", "x-forwarded-for": "192.0.2.1, 104.16.1.1" } },
        },
      },
    };
    expect(toAccessRequest(msg, { trustedHops: 0, now: 1 }).edgeProxy).toBeUndefined();
    const one = toAccessRequest(msg, { trustedHops: 2, now: 1 });
    expect([one.clientIp, one.edgeProxy]).toEqual(["192.0.2.1", "104.16.1.1"]);
    expect(toAccessRequest(msg, { trustedHops: 5, now: 1 }).edgeProxy).toBeUndefined();
  });

  it("is read the same way from a forward-auth request", () => {
    const trustedProxies = loadSettings({
      RISKGATE_HTTP_TRUSTED_PROXIES: "10.0.0.0/8",
    }).httpTrustedProxies;
    const input = {
      method: "GET",
      url: "/auth",
      peer: "10.1.2.3",
      headers: {
        "x-original-uri": "/v1/items",
        "x-original-method": "GET",
        host: "api.example.com",
        // the CDN edge appended the client, nginx the edge (its $proxy_add_x_forwarded_for)
        "x-forwarded-for": "192.0.2.1, 104.16.1.1",
      },
    };
    const one = httpToAccessRequest("nginx", input, { trustedProxies, trustedHops: 1, now: 1 });
    expect([one.clientIp, one.edgeProxy]).toEqual(["192.0.2.1", "104.16.1.1"]);
    const none = httpToAccessRequest("nginx", input, { trustedProxies, trustedHops: 0, now: 1 });
    expect([none.clientIp, none.edgeProxy]).toEqual(["104.16.1.1", undefined]);
  });
});
