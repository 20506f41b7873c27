import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import {
  dialectOf,
  type HttpAuthzInput,
  type HttpDialect,
  httpToAccessRequest,
  MalformedHttpRequest,
} from "../../src/transport/http-request.js";

const proxies = loadSettings({
  RISKGATE_HTTP_TRUSTED_PROXIES: "10.0.0.0/8,127.0.0.1,::1",
}).httpTrustedProxies;

function parse(dialect: HttpDialect, input: Partial<HttpAuthzInput>, trustedHops = 0) {
  return httpToAccessRequest(
    dialect,
    { method: "GET", url: "/auth", headers: {}, peer: "10.1.2.3", ...input },
    { trustedProxies: proxies, trustedHops, now: 1000 },
  );
}

function refusal(fn: () => unknown): MalformedHttpRequest {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedHttpRequest);
    return err as MalformedHttpRequest;
  }
  throw new Error("expected a refusal");
}

describe("forward-auth dialects: nginx auth_request and ingress-nginx", () => {
  it("reads X-Original-URI, X-Original-Method, X-Real-IP and the host", () => {
    const req = parse("nginx", {
      headers: {
        "x-original-uri": "/v1/items?x=1",
        "x-original-method": "post",
        "x-real-ip": "203.0.113.7",
        "x-forwarded-host": "API.example.com:8443",
        authorization: "Bearer t",
        "x-request-id": "r-1",
      },
    });
    expect(req).toMatchObject({
      id: "r-1",
      method: "POST",
      host: "api.example.com",
      path: "/v1/items",
      query: "x=1",
      clientIp: "203.0.113.7",
      receivedAt: 1000,
    });
    expect(req.headers.get("authorization")).toBe("Bearer t");
  });

  it("reads ingress-nginx's X-Original-URL and normalises a traversal in it", () => {
    const req = parse("nginx", {
      headers: {
        "x-original-url": "https://shop.example.com/v1/../admin/users?y=2",
        "x-original-method": "GET",
        "x-forwarded-for": "198.51.100.9",
      },
    });
    expect(req).toMatchObject({
      host: "shop.example.com",
      path: "/admin/users",
      query: "y=2",
      clientIp: "198.51.100.9",
    });
  });

  it("refuses contradictory or missing forwarded headers", () => {
    expect(
      refusal(() =>
        parse("nginx", {
          headers: {
            "x-original-url": "https://a.example/v1/items",
            "x-original-uri": "/admin",
            "x-original-method": "GET",
          },
        }),
      ).message,
    ).toMatch(/disagree/);
    expect(refusal(() => parse("nginx", { headers: { "x-original-uri": "/v1" } })).message).toMatch(
      /x-original-method is missing/,
    );
    expect(
      refusal(() =>
        parse("nginx", { headers: { "x-original-uri": "/a,/b", "x-original-method": "GET" } }),
      ).message,
    ).toMatch(/single origin-form path/);
    expect(
      refusal(() =>
        parse("nginx", { headers: { "x-original-uri": "/a", "x-original-method": "G E T" } }),
      ).message,
    ).toMatch(/not an HTTP method/);
  });
});

describe("forward-auth dialects: Traefik ForwardAuth and Caddy forward_auth", () => {
  const headers = {
    "x-forwarded-method": "DELETE",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "api.example.com",
    "x-forwarded-uri": "/v1/items/7",
    "x-forwarded-for": "203.0.113.7, 198.51.100.1",
  };

  it("reads the original request from the X-Forwarded-* set", () => {
    expect(parse("forward", { headers })).toMatchObject({
      method: "DELETE",
      host: "api.example.com",
      path: "/v1/items/7",
      clientIp: "198.51.100.1",
    });
  });

  it("takes the client from the chain as trusted hops say, as gRPC does", () => {
    expect(parse("forward", { headers }, 1).clientIp).toBe("203.0.113.7");
    // a chain shorter than the trusted hops did not come through them: what the proxy saw wins
    expect(parse("forward", { headers }, 5).clientIp).toBe("198.51.100.1");
  });

  it("refuses a request without X-Forwarded-Uri", () => {
    const { "x-forwarded-uri": _, ...rest } = headers;
    expect(refusal(() => parse("forward", { headers: rest })).reason).toBe("request.malformed");
  });
});

describe("forward-auth dialects: Envoy HTTP ext_authz", () => {
  it("takes the original method and the path after the prefix", () => {
    expect(
      parse("envoy", {
        method: "PUT",
        url: "/auth/envoy/v1/items?z=3",
        headers: { host: "api.example.com", "x-forwarded-for": "203.0.113.7" },
      }),
    ).toMatchObject({ method: "PUT", path: "/v1/items", query: "z=3", clientIp: "203.0.113.7" });
    expect(parse("envoy", { url: "/auth/envoy" }).path).toBe("/");
    // the original Host, never a client's X-Forwarded-Host
    expect(
      parse("envoy", {
        headers: { host: "api.example.com", "x-forwarded-host": "admin.example.com" },
      }).host,
    ).toBe("api.example.com");
  });
});

describe("forward-auth: who may send forwarded headers", () => {
  it("refuses peers outside RISKGATE_HTTP_TRUSTED_PROXIES", () => {
    const err = refusal(() =>
      parse("nginx", {
        peer: "192.0.2.1",
        headers: { "x-original-uri": "/v1", "x-original-method": "GET" },
      }),
    );
    expect(err.reason).toBe("request.untrusted_proxy");
  });

  it("knows an IPv4-mapped IPv6 peer as its IPv4 address", () => {
    expect(
      parse("forward", {
        peer: "::ffff:10.9.9.9",
        headers: {
          "x-forwarded-method": "GET",
          "x-forwarded-host": "a",
          "x-forwarded-uri": "/",
        },
      }).clientIp,
    ).toBe("10.9.9.9");
  });

  it("refuses a bad proxy list at startup, naming the variable", () => {
    expect(() => loadSettings({ RISKGATE_HTTP_TRUSTED_PROXIES: "10.0.0.0/33" })).toThrow(
      /RISKGATE_HTTP_TRUSTED_PROXIES/,
    );
  });
});

describe("forward-auth: the dialect of a request", () => {
  it("comes from the path, or from the headers on /auth", () => {
    expect(dialectOf("/auth/nginx", {})).toBe("nginx");
    expect(dialectOf("/auth/forward", {})).toBe("forward");
    expect(dialectOf("/auth/envoy/v1", {})).toBe("envoy");
    expect(dialectOf("/auth", { "x-original-uri": "/" })).toBe("nginx");
    expect(dialectOf("/auth", { "x-forwarded-uri": "/" })).toBe("forward");
    expect(dialectOf("/auth", {})).toBeUndefined();
    expect(dialectOf("/auth", { "x-forwarded-uri": "/", "x-original-uri": "/" })).toBeUndefined();
    expect(dialectOf("/other", { "x-forwarded-uri": "/" })).toBeUndefined();
  });
});
