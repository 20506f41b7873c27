import type { ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { freePort, waitForPort } from "../helpers/free-port.js";
import { type HttpReply, httpCall } from "../helpers/http-call.js";
import { findProxy, startCaddy, startNginx } from "../helpers/proxies.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * riskgate behind a real nginx (auth_request) and a real Caddy (forward_auth), each running the
 * shipped config from proxies/ on free loopback ports, in front of an upstream that echoes the
 * headers it received. Under CI=true a missing proxy fails the run; elsewhere it is skipped.
 */

function findBinary(name: "nginx" | "caddy", packages: string): string | undefined {
  const found = findProxy(name);
  if (found !== undefined) return found;
  const message = `${name} is not installed; the forward-auth e2e test needs it (Debian: apt-get install ${packages})`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`SKIPPED: ${message}`);
  return undefined;
}

const NGINX = findBinary("nginx", "nginx-light (or nginx)");
const CADDY = findBinary("caddy", "caddy");

/** One request as a client of api.example.com sends it (the path exactly as given). */
const call = (port: number, path: string, headers: Record<string, string> = {}) =>
  httpCall(port, path, { host: "api.example.com", ...headers });

/** The echo upstream: answers every request with the headers and target it received. */
async function startEcho(): Promise<{ server: Server; port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? "");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port, seen };
}

const proxies = [
  {
    name: "nginx",
    binary: NGINX,
    start: (dir: string, listen: number, riskgate: number, upstream: number) =>
      startNginx(NGINX as string, dir, listen, riskgate, upstream),
  },
  {
    name: "Caddy",
    binary: CADDY,
    start: (dir: string, listen: number, riskgate: number, upstream: number) =>
      startCaddy(CADDY as string, dir, listen, riskgate, upstream),
  },
] as const;

describe.skipIf(NGINX === undefined && CADDY === undefined)(
  "forward-auth through real proxies",
  () => {
    let s: TestServer;
    let echo: Awaited<ReturnType<typeof startEcho>>;
    let broken = false;
    const dir = mkdtempSync(join(tmpdir(), "riskgate-proxies-"));
    chmodSync(dir, 0o755);
    const running: ChildProcess[] = [];

    beforeAll(async () => {
      const memory = createMemoryStore();
      const store: Store = {
        kind: "memory",
        exec: (batch) => (broken ? Promise.reject(new Error("store down")) : memory.exec(batch)),
        close: () => memory.close(),
      };
      s = await startTestServer({ store });
      echo = await startEcho();
    });
    afterAll(async () => {
      for (const p of running) p.kill("SIGTERM");
      await new Promise<void>((r) => echo?.server.close(() => r()));
      await s?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const proxy of proxies) {
      describe.skipIf(proxy.binary === undefined)(proxy.name, () => {
        let port: number;
        beforeAll(async () => {
          port = await freePort();
          const own = join(dir, proxy.name);
          mkdirSync(own);
          chmodSync(own, 0o755);
          const child = proxy.start(own, port, s.app.httpPort() as number, echo.port);
          running.push(child);
          let output = "";
          child.stdout?.on("data", (c: Buffer) => {
            output += c.toString();
          });
          child.stderr?.on("data", (c: Buffer) => {
            output += c.toString();
          });
          await waitForPort(port, child, "proxy", () => output);
        });

        it("allow reaches the upstream with riskgate's headers; spoofed ones are gone", async () => {
          const token = await s.token({ sub: `ann-${proxy.name}`, tier: "pro", amr: ["mfa"] });
          const r = await call(port, "/v1/items?x=1", {
            authorization: `Bearer ${token}`,
            "x-riskgate-tier": "enterprise",
            "x-riskgate-decision": "allow-me",
            "x-user-id": "root",
            "x-riskgate-admin": "yes",
          });
          expect(r.status).toBe(200);
          const got = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
          expect(got.url).toBe("/v1/items?x=1");
          expect(got.headers).toMatchObject({
            "x-riskgate-decision": "allow",
            "x-riskgate-tier": "pro",
            "x-riskgate-subject": `ann-${proxy.name}`,
          });
          expect(got.headers["x-riskgate-request-id"]).toMatch(/.+/);
          expect(got.headers["x-user-id"]).toBeUndefined();
          // Caddy drops the whole prefix; nginx can only replace the names it lists (README)
          if (proxy.name === "Caddy") expect(got.headers["x-riskgate-admin"]).toBeUndefined();
        });

        it("a header riskgate did not send does not reach the upstream at all", async () => {
          // an enforced allow carries no shadow decision and no challenge header; Caddy before
          // 2.9 would put its placeholder's literal text upstream for each (docs/proxies/caddy.md)
          const token = await s.token({ sub: `abe-${proxy.name}`, tier: "pro", amr: ["mfa"] });
          const r = await call(port, "/v1/items", { authorization: `Bearer ${token}` });
          expect(r.status).toBe(200);
          const got = JSON.parse(r.body) as { headers: Record<string, string> };
          expect(got.headers["x-riskgate-decision"]).toBe("allow");
          const sent = Object.entries(got.headers).filter(([k]) => k.startsWith("x-riskgate-"));
          expect(sent.filter(([, v]) => v.includes("{"))).toEqual([]);
          expect(got.headers["x-riskgate-shadow-decision"]).toBeUndefined();
          expect(got.headers["x-riskgate-challenge"]).toBeUndefined();
        });

        it("a person's token sent by curl is challenged, as the quick start says", async () => {
          // riskgate token mints a person's session (auth_time, amr); curl is automation
          const token = await s.token({
            sub: `cli-${proxy.name}`,
            tier: "pro",
            amr: ["pwd", "mfa"],
          });
          const r = await call(port, "/v1/items", {
            authorization: `Bearer ${token}`,
            "user-agent": "curl/8.5.0",
          });
          expect(r.status).toBe(401);
          expect(JSON.parse(r.body)).toMatchObject({
            decision: "challenge",
            reasons: [
              { code: "request.automation", points: 10 },
              { code: "rule.automation-on-person-session", points: 0 },
            ],
          });
        });

        it("deny is a 403 with the JSON body", async () => {
          const token = await s.token({ sub: `fred-${proxy.name}`, tier: "free", amr: ["mfa"] });
          const before = echo.seen.length;
          const r = await call(port, "/billing/invoices", { authorization: `Bearer ${token}` });
          expect(r.status).toBe(403);
          expect(r.headers["content-type"]).toMatch(/application\/json/);
          expect(JSON.parse(r.body)).toMatchObject({
            decision: "deny",
            reasons: [{ code: "license.entitlement_missing", points: 0 }],
          });
          expect(echo.seen.length).toBe(before);
        });

        it("challenge is a 401 with the RFC 9470 WWW-Authenticate", async () => {
          const token = await s.token({
            sub: `eve-${proxy.name}`,
            tier: "enterprise",
            amr: ["pwd"],
          });
          const r = await call(port, "/admin/users", { authorization: `Bearer ${token}` });
          expect(r.status).toBe(401);
          expect(r.headers["www-authenticate"]).toMatch(
            /^Bearer error="insufficient_user_authentication".*acr_values="mfa", max_age=900$/,
          );
          expect(JSON.parse(r.body)).toMatchObject({ decision: "challenge" });
        });

        it("refuses path-traversal variants of a protected path", async () => {
          const token = await s.token({ sub: `pat-${proxy.name}`, tier: "pro", amr: ["mfa"] });
          const before = echo.seen.length;
          for (const path of [
            "/v1/../admin/users",
            "/v1/%2e%2e/admin/users",
            "//admin/users",
            "/%61dmin/users",
          ]) {
            const r = await call(port, path, { authorization: `Bearer ${token}` });
            expect([path, r.status]).toEqual([
              path,
              expect.toSatisfy((n: number) => n === 400 || n === 403),
            ]);
          }
          expect(echo.seen.slice(before)).toEqual([]);
        });

        it("a client's own forward-auth headers do not change what is decided", async () => {
          const token = await s.token({ sub: `spoof-${proxy.name}`, tier: "pro", amr: ["mfa"] });
          const before = echo.seen.length;
          const r = await call(port, "/admin/users", {
            authorization: `Bearer ${token}`,
            "x-original-uri": "/v1/items",
            "x-original-url": "http://api.example.com/v1/items",
            "x-original-method": "GET",
            "x-forwarded-uri": "/v1/items",
            "x-forwarded-method": "GET",
          });
          expect([400, 403]).toContain(r.status);
          expect(echo.seen.length).toBe(before);
        });

        it("throttle is a 429 with Retry-After", async () => {
          const token = await s.token({ sub: `vel-${proxy.name}`, tier: "free", amr: ["mfa"] });
          let r: HttpReply | undefined;
          for (let i = 0; i < 30; i++) {
            r = await call(port, "/v1/items", { authorization: `Bearer ${token}` });
            if (r.status !== 200) break;
          }
          expect(r?.status).toBe(429);
          expect(Number(r?.headers["retry-after"])).toBeGreaterThan(0);
          expect(JSON.parse(r?.body ?? "")).toMatchObject({ decision: "throttle" });
        });

        it("failure mode (store down, closed) is a 503", async () => {
          const token = await s.token({ sub: `fm-${proxy.name}`, tier: "pro", amr: ["mfa"] });
          broken = true;
          try {
            const r = await call(port, "/v1/items", { authorization: `Bearer ${token}` });
            expect(r.status).toBe(503);
            expect(JSON.parse(r.body)).toMatchObject({
              decision: "deny",
              reasons: [{ code: "failure.store" }],
            });
          } finally {
            broken = false;
          }
        });
      });
    }
  },
);
