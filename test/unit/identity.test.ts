import { CompactSign, exportSPKI, type JWTVerifyGetKey, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createIdentifier, type IdentityOutcome } from "../../src/access/identity.js";
import { createStaticKeySource, type KeySource } from "../../src/access/key-source.js";
import type { ReasonCode } from "../../src/access/reasons.js";
import {
  accessRequest,
  bearer,
  handBuiltToken,
  identityPolicy,
  NOW,
  NOW_SEC,
  type TestKey,
  testKey,
} from "../helpers/jwt.js";

let es: TestKey;
let rsa: TestKey;
let keys: KeySource;

beforeAll(async () => {
  es = await testKey("es-1", "ES256");
  rsa = await testKey("rsa-1", "RS256");
  keys = createStaticKeySource({ keys: [es.jwk, rsa.jwk] }, "test keys");
});

const identifier = (extra: Record<string, unknown> = {}) =>
  createIdentifier({ keys }, identityPolicy(extra));

function expectInvalid(outcome: IdentityOutcome, reason: ReasonCode, token?: string) {
  expect(outcome).toMatchObject({ kind: "invalid", reason });
  if (token !== undefined && outcome.kind === "invalid") {
    expect(outcome.detail).not.toContain(token);
    expect(outcome.detail).not.toContain(token.split(".")[1] ?? token);
  }
}

describe("a bad token gets its exact reason code", () => {
  const cases: [string, () => Promise<string>, ReasonCode][] = [
    ["not a JWT at all", async () => "not-a-jwt", "identity.malformed"],
    [
      "two segments only",
      async () => (await es.sign()).split(".").slice(0, 2).join("."),
      "identity.malformed",
    ],
    [
      "a signed payload that is not a JSON object",
      () =>
        new CompactSign(new TextEncoder().encode("[1,2]"))
          .setProtectedHeader({ alg: "ES256", kid: "es-1" })
          .sign(es.privateKey),
      "identity.malformed",
    ],
    [
      "exp in the past (beyond skew)",
      () => es.sign({ claims: { iat: NOW_SEC - 3600, exp: NOW_SEC - 120 } }),
      "identity.expired",
    ],
    [
      "nbf in the future",
      () => es.sign({ claims: { nbf: NOW_SEC + 300 } }),
      "identity.not_yet_valid",
    ],
    [
      "signed by another key with the same kid",
      async () => (await testKey("es-1")).sign(),
      "identity.bad_signature",
    ],
    [
      "alg none (hand-built)",
      async () =>
        handBuiltToken(
          { alg: "none", typ: "JWT" },
          { sub: "mallory", iss: "https://issuer.test", aud: "api", exp: NOW_SEC + 600 },
        ),
      "identity.algorithm_not_allowed",
    ],
    [
      "HS256 signed with the RSA public key PEM as the HMAC secret",
      async () =>
        new SignJWT({ sub: "mallory", exp: NOW_SEC + 600 })
          .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
          .setIssuer("https://issuer.test")
          .setAudience("api")
          .sign(new TextEncoder().encode(await exportSPKI(rsa.publicKey))),
      "identity.algorithm_not_allowed",
    ],
    ["a kid no key has", async () => (await testKey("stranger")).sign(), "identity.unknown_key"],
    [
      "the wrong iss",
      () => es.sign({ claims: { iss: "https://evil.test" } }),
      "identity.issuer_mismatch",
    ],
    ["no iss", () => es.sign({ claims: { iss: undefined } }), "identity.issuer_mismatch"],
    ["the wrong aud", () => es.sign({ claims: { aud: ["other"] } }), "identity.audience_mismatch"],
    [
      "no exp (tokens must not live forever)",
      () => es.sign({ claims: { exp: undefined } }),
      "identity.claims_invalid",
    ],
    [
      "an nbf that is not a number",
      () => es.sign({ claims: { nbf: "soon" } }),
      "identity.claims_invalid",
    ],
  ];

  for (const [name, make, reason] of cases) {
    it(`${name} -> ${reason}`, async () => {
      const token = await make();
      expectInvalid(await identifier().identify(bearer(token), NOW), reason, token);
    });
  }

  it("an alg jose knows but the policy does not list -> identity.algorithm_not_allowed, no key lookup", async () => {
    const id = identifier({ algorithms: ["RS256"] });
    const token = await es.sign();
    expectInvalid(await id.identify(bearer(token), NOW), "identity.algorithm_not_allowed", token);
    expect(id.stats().verifications).toBe(0);
  });

  it("a non-Bearer Authorization scheme -> identity.malformed (not anonymous)", async () => {
    const id = identifier();
    for (const value of ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Bearer a b", "Token abc"]) {
      expectInvalid(
        await id.identify(accessRequest({ authorization: value }), NOW),
        "identity.malformed",
      );
    }
  });

  it("an oversized token (> 8 KiB) -> identity.malformed without parsing it", async () => {
    const id = identifier();
    const token = await es.sign({ claims: { pad: "x".repeat(9000) } });
    expectInvalid(await id.identify(bearer(token), NOW), "identity.malformed", token);
    expect(id.stats()).toEqual({ verifications: 0, cacheHits: 0, failures: 1 });
  });

  it("the scheme is case-insensitive and a good token verifies with each allowed algorithm", async () => {
    const id = identifier();
    for (const key of [es, rsa]) {
      const outcome = await id.identify(
        accessRequest({ authorization: `bEaReR ${await key.sign()}` }),
        NOW,
      );
      expect(outcome).toMatchObject({
        kind: "verified",
        source: "bearer",
        cached: false,
        claims: { sub: "alice", tier: "pro" },
      });
    }
  });

  it("reads the token from a custom header when the policy names one", async () => {
    const id = identifier({ sources: { header: "X-Auth" } });
    const token = await es.sign();
    expect(await id.identify(accessRequest({ "x-auth": `Bearer ${token}` }), NOW)).toMatchObject({
      kind: "verified",
    });
    expect(await id.identify(bearer(token), NOW)).toEqual({ kind: "anonymous" });
  });
});

describe("clock skew", () => {
  it("is tolerated on both sides, and no further", async () => {
    const id = identifier({ clock_skew_seconds: 60 });
    const expiredWithinSkew = await es.sign({ claims: { iat: NOW_SEC - 600, exp: NOW_SEC - 59 } });
    const expiredBeyondSkew = await es.sign({ claims: { iat: NOW_SEC - 600, exp: NOW_SEC - 60 } });
    const earlyWithinSkew = await es.sign({ claims: { nbf: NOW_SEC + 60 } });
    const earlyBeyondSkew = await es.sign({ claims: { nbf: NOW_SEC + 61 } });
    expect((await id.identify(bearer(expiredWithinSkew), NOW)).kind).toBe("verified");
    expectInvalid(await id.identify(bearer(expiredBeyondSkew), NOW), "identity.expired");
    expect((await id.identify(bearer(earlyWithinSkew), NOW)).kind).toBe("verified");
    expectInvalid(await id.identify(bearer(earlyBeyondSkew), NOW), "identity.not_yet_valid");
  });

  it("a token not yet valid is not remembered as refused: it verifies once its time comes", async () => {
    const id = identifier({ clock_skew_seconds: 0 });
    const token = await es.sign({ claims: { nbf: NOW_SEC + 10 } });
    expectInvalid(await id.identify(bearer(token), NOW), "identity.not_yet_valid");
    expect((await id.identify(bearer(token), NOW + 10_000)).kind).toBe("verified");
  });
});

describe("credential sources", () => {
  it("reads the named cookie among others, after the header", async () => {
    const id = identifier({ sources: { cookie: "rg_session" } });
    const token = await es.sign({ claims: { sub: "carol" } });
    const viaCookie = await id.identify(
      accessRequest({ cookie: `theme=dark; rg_session=${token}; lang=en` }),
      NOW,
    );
    expect(viaCookie).toMatchObject({
      kind: "verified",
      source: "cookie",
      claims: { sub: "carol" },
    });
    expect(
      await id.identify(accessRequest({ cookie: `rg_session="${token}"` }), NOW),
    ).toMatchObject({
      kind: "verified",
      source: "cookie",
    });
    // the Authorization header wins over the cookie
    const other = await es.sign({ claims: { sub: "dave" } });
    expect(
      await id.identify(
        accessRequest({ authorization: `Bearer ${other}`, cookie: `rg_session=${token}` }),
        NOW,
      ),
    ).toMatchObject({ source: "bearer", claims: { sub: "dave" } });
    // a similarly named cookie or an empty one is no credential
    expect(
      await id.identify(accessRequest({ cookie: `xrg_session=${token}; rg_session=` }), NOW),
    ).toEqual({
      kind: "anonymous",
    });
    expectInvalid(
      await id.identify(accessRequest({ cookie: "rg_session=garbage" }), NOW),
      "identity.malformed",
    );
  });

  it("ignores cookies when the policy names none", async () => {
    const token = await es.sign();
    expect(
      await identifier().identify(accessRequest({ cookie: `rg_session=${token}` }), NOW),
    ).toEqual({
      kind: "anonymous",
    });
  });

  it("accepts Envoy's jwt_authn payload as verified claims, unless it has expired", async () => {
    const id = identifier({ sources: { jwt_authn: { enabled: true } } });
    const meta = (payload: unknown) => ({
      "envoy.filters.http.jwt_authn": { jwt_payload: payload },
    });
    const payload = { sub: "erin", tier: "pro", exp: NOW_SEC + 60 };
    expect(await id.identify(accessRequest({}, meta(payload)), NOW)).toEqual({
      kind: "verified",
      source: "jwt_authn",
      cached: false,
      caller: expect.objectContaining({ subject: "erin", tier: "pro" }),
      claims: payload,
    });
    expectInvalid(
      await id.identify(accessRequest({}, meta({ sub: "erin", exp: NOW_SEC - 31 })), NOW),
      "identity.expired",
    );
    // within the 30 s default skew
    expect(
      (await id.identify(accessRequest({}, meta({ sub: "erin", exp: NOW_SEC - 29 })), NOW)).kind,
    ).toBe("verified");
    expectInvalid(
      await id.identify(accessRequest({}, meta("a string")), NOW),
      "identity.claims_invalid",
    );
    expect(await id.identify(accessRequest({}, {}), NOW)).toEqual({ kind: "anonymous" });
    expect(id.stats().verifications).toBe(0);
  });

  it("reads jwt_authn metadata from the configured namespace and key only when enabled", async () => {
    const custom = createIdentifier(
      { keys: undefined },
      identityPolicy({
        sources: { jwt_authn: { enabled: true, namespace: "jwt", key: "claims" } },
      }),
    );
    await custom.ready();
    expect(
      await custom.identify(accessRequest({}, { jwt: { claims: { sub: "f" } } }), NOW),
    ).toMatchObject({
      kind: "verified",
      claims: { sub: "f" },
    });
    // a policy without a key source (jwt_authn only) cannot verify a bearer token itself
    expectInvalid(await custom.identify(bearer(await es.sign()), NOW), "identity.keys_unavailable");
    const off = identifier();
    expect(
      await off.identify(
        accessRequest({}, { "envoy.filters.http.jwt_authn": { jwt_payload: { sub: "g" } } }),
        NOW,
      ),
    ).toEqual({ kind: "anonymous" });
  });

  it("no credential at all is anonymous", async () => {
    const id = identifier();
    expect(await id.identify(accessRequest(), NOW)).toEqual({ kind: "anonymous" });
    expect(await id.identify(accessRequest({ authorization: "" }), NOW)).toEqual({
      kind: "anonymous",
    });
  });
});

describe("the token cache", () => {
  it("verifies a token once while cached", async () => {
    const id = identifier();
    const token = await es.sign();
    const outcomes: IdentityOutcome[] = [];
    for (let i = 0; i < 50; i++) outcomes.push(await id.identify(bearer(token), NOW + i * 1000));
    expect(id.stats()).toEqual({ verifications: 1, cacheHits: 49, failures: 0 });
    expect(outcomes[0]).toMatchObject({ kind: "verified", cached: false });
    expect(outcomes[49]).toMatchObject({
      kind: "verified",
      cached: true,
      claims: { sub: "alice" },
    });
  });

  it("reports each signature verification, not cache hits, to onVerification", async () => {
    const seen: boolean[] = [];
    const id = createIdentifier({ keys, onVerification: (ok) => seen.push(ok) }, identityPolicy());
    const token = await es.sign();
    for (let i = 0; i < 5; i++) await id.identify(bearer(token), NOW);
    const forged = `${token.slice(0, token.lastIndexOf(".") + 1)}${"A".repeat(86)}`;
    await id.identify(bearer(forged), NOW);
    await id.identify(bearer(forged), NOW); // refused from the negative cache
    expect(seen).toEqual([true, false]);
  });

  it("expires a cached token by the injected clock (exp + skew)", async () => {
    const id = identifier({ clock_skew_seconds: 30 });
    const token = await es.sign(); // exp = NOW + 600 s
    expect((await id.identify(bearer(token), NOW)).kind).toBe("verified");
    expect(await id.identify(bearer(token), NOW + 629_999)).toMatchObject({
      kind: "verified",
      cached: true,
    });
    expectInvalid(await id.identify(bearer(token), NOW + 630_000), "identity.expired");
    expect(id.stats().verifications).toBe(1);
  });

  it("is bounded by token_cache.max_entries (least recently used goes first)", async () => {
    const id = identifier({ token_cache: { max_entries: 2 } });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((sub) => es.sign({ claims: { sub } })));
    for (const token of [a, b, a, c] as string[]) await id.identify(bearer(token), NOW);
    expect(id.stats()).toMatchObject({ verifications: 3, cacheHits: 1 });
    // c pushed out b (a was used more recently)
    expect(await id.identify(bearer(a as string), NOW)).toMatchObject({ cached: true });
    expect(await id.identify(bearer(b as string), NOW)).toMatchObject({ cached: false });
    expect(id.stats().verifications).toBe(4);
  });

  it("shares one verification between concurrent requests, each with its own source", async () => {
    const id = identifier({ sources: { cookie: "s" } });
    const token = await es.sign();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        id.identify(i % 2 ? bearer(token) : accessRequest({ cookie: `s=${token}` }), NOW),
      ),
    );
    expect(id.stats().verifications).toBe(1);
    expect(outcomes.map((o) => (o.kind === "verified" ? o.source : o.kind))).toEqual(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? "bearer" : "cookie")),
    );
  });

  it("holds frozen claims: no request can change what the next one sees", async () => {
    const id = identifier();
    const token = await es.sign({ claims: { entitlements: ["reports"] } });
    const first = await id.identify(bearer(token), NOW);
    if (first.kind !== "verified") throw new Error("expected verified");
    expect(() => (first.claims.entitlements as string[]).push("admin")).toThrow(TypeError);
    expect(await id.identify(bearer(token), NOW)).toMatchObject({
      claims: { entitlements: ["reports"] },
    });
  });

  it("remembers a bad token for 30 s, so a flood of it costs one verification", async () => {
    const id = identifier();
    const forged = await (await testKey("es-1")).sign();
    const wrongAud = await es.sign({ claims: { aud: "other" } });
    for (let i = 0; i < 25; i++) {
      expectInvalid(await id.identify(bearer(forged), NOW + i), "identity.bad_signature");
      expectInvalid(await id.identify(bearer(wrongAud), NOW + i), "identity.audience_mismatch");
    }
    const flood = await Promise.all(
      Array.from({ length: 25 }, () => id.identify(bearer(forged), NOW)),
    );
    expect(flood.every((o) => o.kind === "invalid" && o.reason === "identity.bad_signature")).toBe(
      true,
    );
    expect(id.stats()).toMatchObject({ verifications: 2, failures: 75 });
    // after 30 s it is verified again (and refused again)
    expectInvalid(await id.identify(bearer(forged), NOW + 30_000), "identity.bad_signature");
    expect(id.stats().verifications).toBe(3);
  });

  it("never remembers keys_unavailable: the same token verifies once keys are back", async () => {
    let down = true;
    const flaky: KeySource = {
      description: "flaky",
      ready: () => Promise.resolve(),
      getKey: ((header, token) => {
        if (down) throw new Error("connect ECONNREFUSED 127.0.0.1:1");
        return (keys.getKey as JWTVerifyGetKey)(header, token);
      }) as JWTVerifyGetKey,
    };
    const id = createIdentifier({ keys: flaky }, identityPolicy());
    const token = await es.sign();
    const outcome = await id.identify(bearer(token), NOW);
    expectInvalid(outcome, "identity.keys_unavailable");
    expect(outcome).toMatchObject({ detail: "keys unavailable" });
    down = false;
    expect(await id.identify(bearer(token), NOW)).toMatchObject({ kind: "verified" });
  });
});

describe("key sets where several keys fit", () => {
  it("tries each key when the token has no kid, and refuses a token none of them signed", async () => {
    const a = await testKey("a");
    const b = await testKey("b");
    const strip = ({ kid: _kid, ...jwk }: typeof a.jwk) => jwk;
    const id = createIdentifier(
      { keys: createStaticKeySource({ keys: [strip(a.jwk), strip(b.jwk)] }, "no kids") },
      identityPolicy(),
    );
    expect(
      await id.identify(bearer(await b.sign({ header: { kid: undefined } })), NOW),
    ).toMatchObject({
      kind: "verified",
    });
    const c = await testKey("c");
    expectInvalid(
      await id.identify(bearer(await c.sign({ header: { kid: undefined } })), NOW),
      "identity.bad_signature",
    );
  });
});

describe("times jose leaves to us", () => {
  it("an iat in the future beyond the skew -> identity.not_yet_valid, within it verifies", async () => {
    const id = identifier({ clock_skew_seconds: 30 });
    const future = await es.sign({ claims: { iat: NOW_SEC + 31, exp: NOW_SEC + 600 } });
    const withinSkew = await es.sign({ claims: { iat: NOW_SEC + 30, exp: NOW_SEC + 600 } });
    expectInvalid(await id.identify(bearer(future), NOW), "identity.not_yet_valid", future);
    expect((await id.identify(bearer(withinSkew), NOW)).kind).toBe("verified");
    // not remembered as refused: it verifies once its time comes
    expect((await id.identify(bearer(future), NOW + 1000)).kind).toBe("verified");
  });

  it("a validly signed exp: 1e300 does not live forever (max_token_lifetime_seconds, default 1 day)", async () => {
    const id = identifier();
    const forever = await es.sign({ claims: { exp: 1e300 } });
    const noIatForever = await es.sign({ claims: { iat: undefined, exp: 1e300 } });
    expectInvalid(await id.identify(bearer(forever), NOW), "identity.lifetime_too_long", forever);
    expectInvalid(
      await id.identify(bearer(noIatForever), NOW),
      "identity.lifetime_too_long",
      noIatForever,
    );
    const day = await es.sign({ claims: { exp: NOW_SEC + 86_400 } });
    const dayAndOne = await es.sign({ claims: { exp: NOW_SEC + 86_401 } });
    expect((await id.identify(bearer(day), NOW)).kind).toBe("verified");
    expectInvalid(await id.identify(bearer(dayAndOne), NOW), "identity.lifetime_too_long");
  });

  it("measures exp - iat when there is iat, exp - now (plus skew) when there is not", async () => {
    const id = identifier({ max_token_lifetime_seconds: 3600, clock_skew_seconds: 30 });
    // issued long ago, short lifetime: fine however far exp is from now
    const old = await es.sign({ claims: { iat: NOW_SEC - 3000, exp: NOW_SEC + 600 } });
    expect((await id.identify(bearer(old), NOW)).kind).toBe("verified");
    const noIat = (exp: number) => es.sign({ claims: { iat: undefined, exp } });
    expect((await id.identify(bearer(await noIat(NOW_SEC + 3630)), NOW)).kind).toBe("verified");
    expectInvalid(
      await id.identify(bearer(await noIat(NOW_SEC + 3631)), NOW),
      "identity.lifetime_too_long",
    );
  });

  it("the policy rejects a lifetime that is not a positive whole number of seconds", () => {
    for (const bad of [0, -1, 1.5, "1d"]) {
      expect(() => identityPolicy({ max_token_lifetime_seconds: bad })).toThrow();
    }
    expect(identityPolicy().max_token_lifetime_seconds).toBe(86_400);
  });
});

describe("one token, one spelling", () => {
  const respell: [string, (token: string) => string][] = [
    ["standard base64 alphabet (+ and /)", (t) => t.replaceAll("-", "+").replaceAll("_", "/")],
    // an ES256 signature is 64 bytes: 86 characters, which padded base64 ends with ==
    ["= padding on the signature", (t) => `${t}==`],
    [
      "non-zero trailing bits in the signature",
      (t) => {
        const last = t.charAt(t.length - 1);
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return `${t.slice(0, -1)}${alphabet.charAt(alphabet.indexOf(last) | 1)}`;
      },
    ],
    ["whitespace inside a segment", (t) => t.replace(".", ". ")],
    ["a fourth segment", (t) => `${t}.AAAA`],
  ];

  for (const [name, spell] of respell) {
    it(`${name} -> identity.malformed before any verification`, async () => {
      const id = identifier();
      let token = await es.sign({ claims: { pad: "xx" } });
      // a token whose spelling changes under the transformation
      for (let i = 0; spell(token) === token && i < 20; i++) {
        token = await es.sign({ claims: { pad: "x".repeat(i) } });
      }
      const other = spell(token);
      expect(other).not.toBe(token);
      expectInvalid(await id.identify(bearer(other), NOW), "identity.malformed", other);
      expect(id.stats().verifications).toBe(0);
      expect((await id.identify(bearer(token), NOW)).kind).toBe("verified");
    });
  }

  it("the canonical check accepts exactly the canonical spelling of random bytes", async () => {
    const { isCanonicalBase64url } = await import("../../src/access/token-verifier.js");
    for (let n = 0; n < 40; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      const canonical = bytes.toString("base64url");
      expect(isCanonicalBase64url(canonical)).toBe(true);
      expect(isCanonicalBase64url(bytes.toString("base64"))).toBe(
        bytes.toString("base64") === canonical,
      );
    }
    for (const bad of ["A", "AB", "ABC=", "AB==", "AR", "A+/_", "AAA\n"]) {
      expect(isCanonicalBase64url(bad)).toBe(false);
    }
    expect(isCanonicalBase64url("AQ")).toBe(true);
    expect(isCanonicalBase64url("AQE")).toBe(true);
    expect(isCanonicalBase64url("AQF")).toBe(false);
  });
});

describe("crit", () => {
  it("an unknown crit header parameter -> identity.malformed (not algorithm_not_allowed)", async () => {
    const id = identifier();
    const token = await new SignJWT({ sub: "alice", tier: "pro", exp: NOW_SEC + 600 })
      .setProtectedHeader({
        alg: "ES256",
        kid: "es-1",
        crit: ["urn:x:must-know"],
        "urn:x:must-know": 1,
      })
      .setIssuer("https://issuer.test")
      .setAudience("api")
      .setIssuedAt(NOW_SEC)
      .sign(es.privateKey, { crit: { "urn:x:must-know": true } });
    expectInvalid(await id.identify(bearer(token), NOW), "identity.malformed", token);
    expect(id.stats().verifications).toBe(0);
  });
});

describe("the caller comes from identity", () => {
  it("is read with the identifier's own claim paths and cached with the verified token", async () => {
    const id = identifier({ claims: { subject: "uid", tier: "plan.name" } });
    const token = await es.sign({ claims: { uid: "u-9", plan: { name: "enterprise" } } });
    const first = await id.identify(bearer(token), NOW);
    const second = await id.identify(bearer(token), NOW);
    expect(first).toMatchObject({
      kind: "verified",
      caller: { subject: "u-9", tier: "enterprise" },
    });
    if (first.kind !== "verified" || second.kind !== "verified")
      throw new Error("expected verified");
    expect(second.cached).toBe(true);
    expect(second.caller).toBe(first.caller);
    expect(Object.isFrozen(first.caller) && Object.isFrozen(first.caller.amr)).toBe(true);
  });

  it("a verified token or jwt_authn payload without a subject -> identity.claims_invalid", async () => {
    const id = identifier({ sources: { jwt_authn: { enabled: true } } });
    const token = await es.sign({ claims: { sub: undefined } });
    expectInvalid(await id.identify(bearer(token), NOW), "identity.claims_invalid", token);
    expectInvalid(
      await id.identify(
        accessRequest({}, { "envoy.filters.http.jwt_authn": { jwt_payload: { tier: "pro" } } }),
        NOW,
      ),
      "identity.claims_invalid",
    );
  });

  it("a jwt_authn payload gets the same time rules when it has exp", async () => {
    const id = identifier({ sources: { jwt_authn: { enabled: true } } });
    const meta = (payload: unknown) => ({
      "envoy.filters.http.jwt_authn": { jwt_payload: payload },
    });
    expectInvalid(
      await id.identify(
        accessRequest({}, meta({ sub: "e", iat: NOW_SEC + 300, exp: NOW_SEC + 600 })),
        NOW,
      ),
      "identity.not_yet_valid",
    );
    expectInvalid(
      await id.identify(accessRequest({}, meta({ sub: "e", iat: NOW_SEC, exp: 1e300 })), NOW),
      "identity.lifetime_too_long",
    );
  });
});

describe("the refused-token cache", () => {
  it("holds only tokens that cost a verification, so cheap refusals cannot push them out", async () => {
    const id = identifier();
    const forged = await (await testKey("es-1")).sign();
    expectInvalid(await id.identify(bearer(forged), NOW), "identity.bad_signature");
    // 2000 distinct tokens refused from their text alone (the refused cache holds 1024)
    for (let i = 0; i < 2000; i++) {
      const junk = `${forged.slice(0, -2)}${i}==`;
      expectInvalid(await id.identify(bearer(junk), NOW), "identity.malformed");
    }
    expectInvalid(await id.identify(bearer(forged), NOW + 1000), "identity.bad_signature");
    expect(id.stats().verifications).toBe(1);
  });
});
