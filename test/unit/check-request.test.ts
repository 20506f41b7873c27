import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type CheckRequestMessage,
  MalformedCheckRequest,
  normalisePath,
  toAccessRequest,
} from "../../src/transport/check-request.js";

const fixture = JSON.parse(
  readFileSync("test/fixtures/check-requests/envoy-get.json", "utf8"),
) as CheckRequestMessage;
const opts = { trustedHops: 0, now: 1_000 };

function withHttp(http: Record<string, unknown>, source?: string): CheckRequestMessage {
  return {
    attributes: {
      ...(source ? { source: { address: { socket_address: { address: source } } } } : {}),
      request: { http },
    },
  } as CheckRequestMessage;
}

describe("CheckRequest -> AccessRequest", () => {
  it("normalises Envoy's request", () => {
    const req = toAccessRequest(fixture, opts);
    expect(req).toMatchObject({
      id: "8d5c9a7e-7a3f-4f6e-9a1b-2c3d4e5f6a7b",
      method: "GET",
      host: "api.example.com",
      path: "/v1/items",
      query: "limit=10",
      clientIp: "198.51.100.23",
      principal: "spiffe://cluster.local/ns/edge/sa/gateway",
      sni: "api.example.com",
      contextExtensions: { virtual_host: "api" },
      receivedAt: 1_000,
    });
    expect(req.headers.get("user-agent")).toBe("curl/8.5.0");
    expect(req.metadata["envoy.filters.http.jwt_authn"]).toEqual({
      jwt_payload: { sub: "alice", tier: "pro", exp: 4102444800, amr: ["pwd", "mfa"] },
    });
  });

  it("takes the client IP from x-forwarded-for only through trusted hops", () => {
    const http = { headers: { "x-forwarded-for": "192.0.2.1, 203.0.113.9" } };
    const msg = withHttp(http, "10.1.1.1");
    expect(toAccessRequest(msg, { ...opts, trustedHops: 0 }).clientIp).toBe("10.1.1.1");
    expect(toAccessRequest(msg, { ...opts, trustedHops: 1 }).clientIp).toBe("203.0.113.9");
    expect(toAccessRequest(msg, { ...opts, trustedHops: 2 }).clientIp).toBe("192.0.2.1");
    // fewer entries than trusted hops: the header did not come through the proxies
    expect(toAccessRequest(msg, { ...opts, trustedHops: 5 }).clientIp).toBe("10.1.1.1");
    // Envoy with use_remote_address appends the peer itself: no double count
    const appended = withHttp(
      { headers: { "x-forwarded-for": "192.0.2.1, 10.1.1.1" } },
      "10.1.1.1",
    );
    expect(toAccessRequest(appended, { ...opts, trustedHops: 1 }).clientIp).toBe("192.0.2.1");
  });

  it("accepts header_map (encode_raw_headers) and IPv4-mapped IPv6 sources", () => {
    const req = toAccessRequest(
      withHttp(
        {
          header_map: {
            headers: [
              { key: ":path", raw_value: Buffer.from("/v1/a?b=c") },
              { key: "Cookie", raw_value: Buffer.from("a=1") },
              { key: "cookie", raw_value: Buffer.from("b=2") },
            ],
          },
        },
        "::ffff:198.51.100.7",
      ),
      opts,
    );
    expect(req.path).toBe("/v1/a");
    expect(req.headers.get("cookie")).toBe("a=1; b=2");
    expect(req.clientIp).toBe("198.51.100.7");
  });

  it("survives partial requests: no headers, no source, junk", () => {
    const req = toAccessRequest(withHttp({}), opts);
    expect(req).toMatchObject({ method: "GET", path: "/", host: "", clientIp: "", size: -1 });
    expect(req.id).toMatch(/^[0-9a-f-]{36}$/);
    const junk = toAccessRequest(
      withHttp(
        { headers: { "x-junk": "\u0000\uFFFD".repeat(40_000) }, host: "[::1]:8443" },
        "not-an-ip",
      ),
      opts,
    );
    expect(junk.headers.get("x-junk")?.length).toBe(16 * 1024);
    expect(junk.host).toBe("::1");
    expect(junk.clientIp).toBe("");
  });

  it("rejects a request without HTTP attributes as malformed", () => {
    expect(() => toAccessRequest({}, opts)).toThrow(MalformedCheckRequest);
    expect(() => toAccessRequest({ attributes: { request: {} } }, opts)).toThrow(
      MalformedCheckRequest,
    );
  });
});

describe("path normalisation", () => {
  it.each([
    ["/admin", "/admin"],
    ["//admin", "/admin"],
    ["/x/../admin", "/admin"],
    ["/./admin/./users", "/admin/users"],
    ["/%61dmin", "/admin"],
    ["/a%2fb", "/a%2Fb"],
    ["/../../etc", "/etc"],
    ["/a/b/", "/a/b/"],
    ["/a/b/..", "/a/"],
    ["relative", "/relative"],
  ])("%s -> %s", (input, expected) => {
    expect(normalisePath(input)).toBe(expected);
  });
});
