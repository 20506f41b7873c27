import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { createApp } from "../../src/app.js";
import { buildCheckRequest, describeResponse } from "../../src/cli/check.js";
import { loadSettings } from "../../src/config/settings.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { solvePow } from "../helpers/pow.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

// The whole browser challenge through Envoy's gRPC ext_authz and the HTTP listener that
// serves the page: Check -> 302 denied_response -> page -> answer -> clearance -> Check allows.

const POLICY = `
version: 1
identity: { issuers: ["https://riskgate.dev/demo"], audiences: ["demo-api"], algorithms: [ES256] }
tiers:
  visitor: { entitlements: [], limits: { requests_per_window: 1000 }, risk: { challenge_at: 60, deny_at: 95 } }
anonymous_tier: visitor
routes:
  - { name: site, match: { path: { prefix: / } }, auth: optional }
rules:
  - name: challenge-unproven
    when: { anonymous: true, reasons_none: [challenge.cleared] }
    action: challenge
decisions:
  challenge:
    style: interactive
    interactive: { pow: { min_bits: 8, max_bits: 10 } }
`;

const IP = "203.0.113.7";
const UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131";

function check(headers: Record<string, string>) {
  return buildCheckRequest({
    method: "GET",
    path: "/shop/cart?item=7",
    host: "shop.example.com",
    ip: IP,
    headers: { accept: "text/html", "user-agent": UA, ...headers },
  });
}

describe("browser challenge through Envoy gRPC", () => {
  let s: TestServer;
  let http: string;
  beforeAll(async () => {
    s = await startTestServer({ policyText: POLICY });
    http = `http://127.0.0.1:${s.app.httpPort()}`;
  });
  afterAll(() => s.stop());

  it("redirects, serves the page, takes the answer, and the clearance lets the next Check through", async () => {
    const first = describeResponse(await s.client.check(check({})));
    expect(first.httpStatus).toBe(302);
    const location = first.headers.location as string;
    expect(location).toMatch(/^\/\.riskgate\/challenge\?c=[\w-]+\.[\w-]+\.[\w-]+$/);

    // the proxy in front (trusted: loopback) forwards the browser's address
    const via = { "x-real-ip": IP, "user-agent": UA };
    const page = await fetch(`${http}${location}`, { headers: via });
    expect(page.status).toBe(200);
    const html = await page.text();
    const nonce = /data-nonce="([^"]+)"/.exec(html)?.[1] as string;
    const bits = Number(/data-bits="(\d+)"/.exec(html)?.[1]);
    expect(bits).toBeGreaterThanOrEqual(8);
    const c = new URL(location, http).searchParams.get("c") as string;
    const answered = await fetch(`${http}/.riskgate/challenge`, {
      method: "POST",
      headers: { ...via, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ c, answer: solvePow(nonce, bits) as string }).toString(),
      redirect: "manual",
    });
    expect(answered.status).toBe(303);
    expect(answered.headers.get("location")).toBe("/shop/cart?item=7");
    const cookie = (answered.headers.get("set-cookie") ?? "").split(";")[0] as string;
    expect(cookie).toMatch(/^riskgate_clearance=/);

    const next = describeResponse(await s.client.check(check({ cookie })));
    expect(next.httpStatus).toBe(200);
    expect(next.headers["x-riskgate-decision"]).toBe("allow");

    // the same cookie from another network, or another browser, is challenged again
    const elsewhere = check({ cookie });
    (
      elsewhere.attributes as { source: { address: { socket_address: { address: string } } } }
    ).source.address.socket_address.address = "198.51.100.9";
    const moved = describeResponse(await s.client.check(elsewhere));
    expect(moved.httpStatus).toBe(302);
    const otherUa = describeResponse(
      await s.client.check(check({ cookie, "user-agent": "curl/8" })),
    );
    expect(otherUa.httpStatus).toBe(302);
  });
});

describe("interactive challenges need riskgate's own key set", () => {
  it("refuses to start without RISKGATE_CLEARANCE_KEYS_FILE outside --dev", async () => {
    const app = createApp({
      settings: loadSettings({}, { grpcAddress: "127.0.0.1:0", httpAddress: "off", dev: false }),
      logger: createLogger(
        "fatal",
        new Writable({
          write: (_c, _e, done) => done(),
        }),
      ),
    });
    await expect(app.start(parsePolicy(POLICY, "interactive.yaml"))).rejects.toMatchObject({
      code: "RISKGATE_CLEARANCE_KEYS_INVALID",
    });
    await app.shutdown(0);
  });
});
