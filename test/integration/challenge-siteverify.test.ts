import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { ChallengeHit } from "../../src/challenge/answer.js";
import { bindingOf } from "../../src/challenge/binding.js";
import { clearanceKeysOf } from "../../src/challenge/keys.js";
import { safeReturn } from "../../src/challenge/return-target.js";
import { createChallengeService } from "../../src/challenge/service.js";
import { createSiteVerifier } from "../../src/challenge/siteverify.js";
import { readClearance, signChallenge } from "../../src/challenge/tokens.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";
import { solvePow } from "../helpers/pow.js";

// The CAPTCHA providers cannot be reached from here: a local server speaks their documented
// siteverify contract (form POST secret, response, remoteip; JSON success, hostname,
// error-codes), and the challenge service is driven against it.

const SECRET = "0x-test-secret";
const UA = "Mozilla/5.0 Chrome/131";
const IP = "192.0.2.44";

interface Call {
  secret: string | null;
  response: string | null;
  remoteip: string | null;
  type: string | undefined;
}

let server: Server;
let url: string;
const calls: Call[] = [];
/** How the fake provider answers the next calls, by the widget token it receives. */
function answer(token: string, res: ServerResponse): void {
  const json = (body: unknown) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (token === "good") json({ success: true, hostname: "app.example.com" });
  else if (token === "elsewhere") json({ success: true, hostname: "evil.example.net" });
  // never answered (closed with the server): the verifier's own timeout decides, however late
  // its timer runs on a loaded machine
  else if (token === "slow") return;
  else if (token === "down") {
    res.writeHead(502);
    res.end();
  } else json({ success: false, "error-codes": ["invalid-input-response"] });
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      const form = new URLSearchParams(body);
      calls.push({
        secret: form.get("secret"),
        response: form.get("response"),
        remoteip: form.get("remoteip"),
        type: req.headers["content-type"],
      });
      answer(form.get("response") ?? "", res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/siteverify`;
});
afterAll(
  () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
);

const keys = clearanceKeysOf([{ kid: "k1", secret: new Uint8Array(32).fill(5) }]);
const logs: string[] = [];
const logger = createLogger(
  "info",
  new Writable({
    write(c, _e, done) {
      logs.push(String(c));
      done();
    },
  }),
);

/**
 * The challenge service on a policy whose siteverify timeout is far above a local answer on a
 * loaded machine (5 s), or `timeoutMs` where the test is the timeout.
 */
function setup(
  mechanism: "pow" | "turnstile",
  breakerFailures = 5,
  onOutcome?: (mechanism: string, outcome: string) => void,
  timeoutMs = 5000,
) {
  const policy = parsePolicy(
    `
version: 1
identity: { issuers: ["https://i"], audiences: ["a"] }
tiers: { t: { entitlements: [], limits: { requests_per_window: 10 }, risk: { challenge_at: 40, deny_at: 80 } } }
decisions:
  challenge:
    style: interactive
    interactive:
      mechanism: ${mechanism}
      captcha: { site_key: "1x-site", verify_url: "${url}", timeout_ms: ${timeoutMs}, breaker_failures: ${breakerFailures}, breaker_open_seconds: 30 }
`,
    "t.yaml",
  );
  policySnapshotOf(policy, fakeIdentifier({})); // the policy is a servable one
  let now = TEST_NOW;
  const service = createChallengeService({
    keys,
    store: createMemoryStore(),
    logger,
    captchaSecret: SECRET,
    siteverify: createSiteVerifier({ clock: () => now }),
    ...(onOutcome === undefined ? {} : { onOutcome }),
  });
  const challenge = (over: { failOpen?: boolean; bits?: number; ret?: string } = {}) =>
    signChallenge(keys, {
      nonce: `n-${Math.random().toString(36).slice(2)}`,
      mechanism,
      bits: over.bits ?? 8,
      ret: over.ret ?? "/app?x=1",
      host: "app.example.com",
      sub: "",
      failOpen: over.failOpen ?? false,
      exp: Math.floor(now / 1000) + 300,
      ...bindingOf(IP, UA),
    });
  const hit = (method: string, params: Record<string, string>, over: Partial<ChallengeHit> = {}) =>
    service.serve(
      { method, params: new URLSearchParams(params), clientIp: IP, userAgent: UA, now, ...over },
      policy,
    );
  return { service, challenge, hit, advance: (ms: number) => (now += ms) };
}

const header = (page: { headers: readonly (readonly [string, string])[] }, name: string) =>
  page.headers.find(([k]) => k === name)?.[1];

describe("siteverify contract (Turnstile, hCaptcha, reCAPTCHA)", () => {
  it("a pass posts secret, response and remoteip as a form, then sets the clearance", async () => {
    const { challenge, hit } = setup("turnstile");
    const c = await challenge();
    const page = await hit("GET", { c });
    expect(page.status).toBe(200);
    expect(page.body).toContain('class="cf-turnstile" data-sitekey="1x-site"');
    expect(page.body).toContain("https://challenges.cloudflare.com/turnstile/v0/api.js");
    calls.length = 0;
    const done = await hit("POST", { c, "cf-turnstile-response": "good" });
    expect(calls).toEqual([
      {
        secret: SECRET,
        response: "good",
        remoteip: IP,
        type: "application/x-www-form-urlencoded",
      },
    ]);
    expect(done.status).toBe(303);
    expect(header(done, "location")).toBe("/app?x=1");
    const cookie = header(done, "set-cookie") ?? "";
    expect(cookie).toMatch(
      /^riskgate_clearance=[\w-]+\.[\w-]+\.[\w-]+; Path=\/; Max-Age=1800; HttpOnly; SameSite=Lax; Secure$/,
    );
    const token = cookie.slice(cookie.indexOf("=") + 1, cookie.indexOf(";"));
    const fact = await readClearance(keys, token, bindingOf(IP, UA), TEST_NOW);
    expect(fact).toMatchObject({ kind: "valid", mechanism: "turnstile" });
    expect((fact as { subject: string }).subject).toMatch(/^anon:/);
  });

  it("a failure (success false, or another hostname) is refused without a cookie", async () => {
    const { challenge, hit } = setup("turnstile");
    for (const token of ["bad", "elsewhere"]) {
      const res = await hit("POST", { c: await challenge(), "cf-turnstile-response": token });
      expect(res.status).toBe(403);
      expect(header(res, "set-cookie")).toBeUndefined();
    }
  });

  it("a timeout follows the route's failure mode: closed refuses (503), open lets through", async () => {
    const { challenge, hit } = setup("turnstile", 5, undefined, 50);
    const closed = await hit("POST", { c: await challenge(), "cf-turnstile-response": "slow" });
    expect(closed.status).toBe(503);
    expect(header(closed, "set-cookie")).toBeUndefined();
    const open = await hit("POST", {
      c: await challenge({ failOpen: true }),
      "cf-turnstile-response": "slow",
    });
    expect(open.status).toBe(303);
    expect(header(open, "set-cookie")).toMatch(/^riskgate_clearance=/);
  });

  it("opens the breaker after consecutive failures, and tries again once it has cooled", async () => {
    const { challenge, hit, advance } = setup("turnstile", 2);
    for (let i = 0; i < 2; i++) {
      expect(
        (await hit("POST", { c: await challenge(), "cf-turnstile-response": "down" })).status,
      ).toBe(503);
    }
    calls.length = 0;
    const open = await hit("POST", { c: await challenge(), "cf-turnstile-response": "good" });
    expect(open.status).toBe(503);
    expect(calls).toHaveLength(0); // the provider was not called
    advance(30_000);
    const again = await hit("POST", { c: await challenge(), "cf-turnstile-response": "good" });
    expect(again.status).toBe(303);
    expect(calls).toHaveLength(1);
  });
});

describe("challenge answers", () => {
  it("a solved proof of work passes once; the same nonce again is refused", async () => {
    const { challenge, hit } = setup("pow");
    const c = await challenge({ bits: 10 });
    const page = await hit("GET", { c });
    expect(page.status).toBe(200);
    expect(header(page, "content-security-policy")).toMatch(/script-src 'sha256-/);
    const nonce = /data-nonce="([^"]+)"/.exec(page.body)?.[1] as string;
    const answer = solvePow(nonce, 10) as string;
    expect((await hit("POST", { c, answer })).status).toBe(303);
    expect((await hit("POST", { c, answer })).status).toBe(403);
  });

  it("a wrong answer, an expired or forged challenge, another network or browser are refused", async () => {
    const { challenge, hit, advance } = setup("pow");
    expect((await hit("POST", { c: await challenge({ bits: 20 }), answer: "1" })).status).toBe(403);
    expect((await hit("GET", { c: "junk" })).status).toBe(400);
    const c = await challenge();
    expect((await hit("GET", { c }, { clientIp: "203.0.113.9" })).status).toBe(403);
    expect((await hit("GET", { c }, { userAgent: "curl/8" })).status).toBe(403);
    advance(301_000);
    const expired = await hit("GET", { c });
    expect(expired.status).toBe(403);
    expect(expired.body).toContain('href="/app?x=1"');
  });

  it("returns only to a same-host path (no open redirect)", () => {
    expect(safeReturn("/app?x=1")).toBe("/app?x=1");
    for (const bad of [
      "https://evil.example/",
      "//evil.example/",
      "/\\evil.example",
      "/a\r\nSet-Cookie: x=1",
      "javascript:alert(1)",
      "/.riskgate/challenge?c=1",
      "",
    ]) {
      expect(safeReturn(bad)).toBe("/");
    }
  });
});

describe("challenge outcomes are counted for metrics", () => {
  it("names each step: passed, failed, reused, invalid, expired, unavailable", async () => {
    const seen: string[] = [];
    const count = (mechanism: string, outcome: string) => seen.push(`${mechanism}:${outcome}`);
    const pow = setup("pow", 5, count);
    const c = await pow.challenge({ bits: 4 });
    const nonce = JSON.parse(Buffer.from(c.split(".")[1] ?? "", "base64url").toString()).nonce;
    await pow.hit("POST", { c, answer: solvePow(nonce, 4) ?? "" });
    await pow.hit("POST", { c, answer: solvePow(nonce, 4) ?? "" }); // spent
    await pow.hit("POST", { c: await pow.challenge({ bits: 20 }), answer: "0" });
    await pow.hit("POST", { c: await pow.challenge() }, { userAgent: "other" });
    await pow.hit("POST", { c: "not.a.challenge", answer: "0" });
    const old = await pow.challenge();
    pow.advance(301_000);
    await pow.hit("POST", { c: old, answer: "0" });
    const captcha = setup("turnstile", 5, count);
    await captcha.hit("POST", { c: await captcha.challenge(), "cf-turnstile-response": "bad" });
    const timesOut = setup("turnstile", 5, count, 50);
    await timesOut.hit("POST", { c: await timesOut.challenge(), "cf-turnstile-response": "slow" });
    expect(seen).toEqual([
      "pow:passed",
      "pow:reused",
      "pow:failed",
      "pow:invalid",
      "unknown:invalid",
      "unknown:expired",
      "turnstile:failed",
      "turnstile:unavailable",
    ]);
  });
});
