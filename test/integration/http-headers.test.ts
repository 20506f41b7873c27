import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_REQUEST_HEADERS } from "../../src/transport/http-authz.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * What a forward-auth request carries must be read whole: a client cannot pad its request so
 * that what the proxy appends after its own headers goes unseen, and a second credential is a
 * contradiction, refused as the gRPC transport refuses it, never decided on the first.
 */

/** One raw HTTP/1.1 request (header lines as given, in order); resolves with the status. */
async function rawStatus(port: number, target: string, lines: readonly string[]): Promise<number> {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(await rawAnswer(port, target, lines))?.[1] ?? 0);
}

/** One raw HTTP/1.1 request; resolves with the whole answer as text. */
function rawAnswer(port: number, target: string, lines: readonly string[]): Promise<string> {
  const bytes = `GET ${target} HTTP/1.1\r\n${lines.join("\r\n")}\r\nconnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    // not half-closed: the server answers, then closes (connection: close)
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    let out = "";
    socket.on("data", (c: Buffer) => {
      out += c.toString("latin1");
    });
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
  });
}

/** `n` short filler headers (the request line and the others add to the count). */
const padding = (n: number) => Array.from({ length: n }, (_, i) => `p${i}: 1`);

let s: TestServer;
let port: number;
let token: string;
beforeAll(async () => {
  s = await startTestServer();
  port = s.app.httpPort() as number;
  token = await s.token({ sub: "ann", tier: "pro", amr: ["mfa"] });
});
afterAll(async () => {
  await s?.stop();
});

/** nginx auth_request for GET /v1/items with a good token: `extra` header lines after it. */
function nginx(extra: readonly string[]): Promise<number> {
  return rawStatus(port, "/auth/nginx", [
    "host: riskgate",
    "x-original-method: GET",
    "x-original-uri: /v1/items",
    "x-forwarded-host: api.example.com",
    `authorization: Bearer ${token}`,
    ...extra,
  ]);
}

describe("HTTP forward-auth reads every header", () => {
  it("decides a request of up to the header-count limit", async () => {
    expect(await nginx([])).toBe(200);
    // 5 headers above, connection: close, and padding up to the limit
    expect(await nginx(padding(MAX_REQUEST_HEADERS - 6))).toBe(200);
  });

  it("answers 431 past the limit, so nothing a proxy appends after padding goes unseen", async () => {
    const forward = (extra: readonly string[]) =>
      rawStatus(port, "/auth/forward", [
        "host: riskgate",
        "x-forwarded-method: GET",
        "x-forwarded-uri: /v1/items",
        "x-forwarded-host: api.example.com",
        `authorization: Bearer ${token}`,
        ...extra,
      ]);
    expect(await forward(padding(MAX_REQUEST_HEADERS - 5))).toBe(431);
    expect(await forward([...padding(2100), "x-forwarded-uri: /admin"])).toBe(431);
    // nginx's auth_request makes a 431 a 500: its dialect gets a 403 that names the 431
    expect(await nginx(padding(MAX_REQUEST_HEADERS - 5))).toBe(403);
    // 2,100 headers, then what a proxy appended: a second original URI
    const padded = await rawAnswer(port, "/auth/nginx", [
      "host: riskgate",
      "x-original-uri: /v1/items",
      `authorization: Bearer ${token}`,
      ...padding(2100),
      "x-original-uri: /admin",
    ]);
    expect(padded).toMatch(/^HTTP\/1\.1 403 /);
    expect(padded).toMatch(/\r\nx-riskgate-status: 431\r\n/i);
    expect(padded).toMatch(
      /\r\nx-riskgate-body: .*request\.malformed.*more than \d+ request headers/i,
    );
    // without the padding the contradiction is seen (nginx's 403 for a malformed request)
    expect(await nginx(["x-original-uri: /admin"])).toBe(403);
  });

  it("refuses two Authorization headers (identity.malformed), as over gRPC", async () => {
    const other = await s.token({ sub: "bob", tier: "free" });
    expect(await nginx([`authorization: Bearer ${other}`])).toBe(401);
    expect(await nginx([`Authorization: Bearer ${token}`])).toBe(401);
  });
});
