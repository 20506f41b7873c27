import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { createIdentifier } from "../../src/access/identity.js";
import { createFileKeySource, createRemoteKeySource } from "../../src/access/key-source.js";
import type { AccessRequest } from "../../src/access/request.js";
import { createDevKeySource, loadOrCreateDevKeys, mintDevToken } from "../../src/cli/dev-keys.js";
import { policySchema } from "../../src/config/policy-schema.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const identity = (extra: Record<string, unknown> = {}) =>
  policySchema.parse({
    version: 1,
    identity: { issuers: ["https://issuer.test"], audiences: ["api"], ...extra },
    tiers: { free: {} },
  }).identity;

function req(
  headers: Record<string, string>,
  metadata: AccessRequest["metadata"] = {},
): AccessRequest {
  return {
    id: "r",
    method: "GET",
    host: "h",
    path: "/",
    query: "",
    headers: new Map(Object.entries(headers)),
    clientIp: "",
    size: -1,
    principal: "",
    sni: "",
    contextExtensions: {},
    metadata,
    receivedAt: NOW,
  };
}

async function keyPair(kid: string) {
  const pair = await generateKeyPair("ES256", { extractable: true });
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256", use: "sig" };
  const sign = (claims: Record<string, unknown> = {}, nowMs = NOW) =>
    new SignJWT({ sub: "alice", tier: "pro", ...claims })
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer("https://issuer.test")
      .setAudience("api")
      .setIssuedAt(Math.floor(nowMs / 1000))
      .setExpirationTime(Math.floor(nowMs / 1000) + 600)
      .sign(pair.privateKey);
  return { jwk, sign };
}

/** A JWKS endpoint on 127.0.0.1 that counts its hits. */
async function jwksServer(initial: JWK[]) {
  let keys = initial;
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    uri: `http://127.0.0.1:${port}/jwks.json`,
    hits: () => hits,
    rotate: (next: JWK[]) => {
      keys = next;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe("identity with a remote JWKS", () => {
  it("fetches keys once, follows a key rotation, and rate-limits refetches on unknown kids", async () => {
    const k1 = await keyPair("k1");
    const k2 = await keyPair("k2");
    const jwks = await jwksServer([k1.jwk]);
    closers.push(jwks.close);
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 1000,
    });
    const id = createIdentifier({ keys }, identity());
    await id.ready();
    expect(jwks.hits()).toBe(1);
    const ok = await id.identify(req({ authorization: `Bearer ${await k1.sign()}` }), NOW);
    expect(ok).toMatchObject({ kind: "verified", source: "bearer", cached: false });
    expect(jwks.hits()).toBe(1);

    // the issuer rotates to k2: a token with the new kid makes the key set refetch once.
    // (jose measures the cooldown from the last fetch in real time, so this part uses a key
    // source with no cooldown; the flood below uses the 30 s one.)
    const fast = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 0,
      timeoutMs: 1000,
    });
    const id2 = createIdentifier({ keys: fast }, identity());
    await id2.ready();
    jwks.rotate([k1.jwk, k2.jwk]);
    const before = jwks.hits();
    expect(
      await id2.identify(req({ authorization: `Bearer ${await k2.sign({ sub: "bob" })}` }), NOW),
    ).toMatchObject({
      kind: "verified",
    });
    expect(jwks.hits()).toBe(before + 1);

    // a flood of tokens with unknown kids costs at most one fetch per cooldown
    const stranger = await keyPair("nobody");
    const flood = await Promise.all(
      Array.from({ length: 20 }, async (_, i) =>
        id.identify(req({ authorization: `Bearer ${await stranger.sign({ sub: `x${i}` })}` }), NOW),
      ),
    );
    expect(flood.every((o) => o.kind === "invalid" && o.reason === "identity.unknown_key")).toBe(
      true,
    );
    // id's last fetch was moments ago: inside its 30 s cooldown, no refetch at all
    expect(jwks.hits()).toBe(before + 1);
  });

  it("reports unreachable keys: ready() rejects and tokens get identity.keys_unavailable", async () => {
    const k1 = await keyPair("k1");
    const keys = createRemoteKeySource({
      uri: "http://127.0.0.1:9/jwks.json",
      cacheMaxAgeMs: 1000,
      cooldownMs: 0,
      timeoutMs: 500,
    });
    const id = createIdentifier({ keys }, identity());
    await expect(id.ready()).rejects.toMatchObject({ code: "RISKGATE_JWKS_UNAVAILABLE" });
    const out = await id.identify(req({ authorization: `Bearer ${await k1.sign()}` }), NOW);
    expect(out).toMatchObject({ kind: "invalid", reason: "identity.keys_unavailable" });
  });

  it("reads a JWKS file", async () => {
    const k1 = await keyPair("k1");
    const file = join(mkdtempSync(join(tmpdir(), "rg-jwks-")), "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    const id = createIdentifier({ keys: createFileKeySource({ file }) }, identity());
    await id.ready();
    expect((await id.identify(req({ authorization: `Bearer ${await k1.sign()}` }), NOW)).kind).toBe(
      "verified",
    );
    await expect(createFileKeySource({ file: "/nonexistent.json" }).ready()).rejects.toMatchObject({
      code: "RISKGATE_JWKS_UNAVAILABLE",
    });
  });
});

describe("identity: sources, cache and clock", () => {
  it("verifies a token once while cached, and expires it by the injected clock", async () => {
    const k1 = await keyPair("k1");
    const id = createIdentifier(
      { keys: createDevKeySource({ keys: [k1.jwk] }) },
      identity({ clock_skew_seconds: 30 }),
    );
    const token = await k1.sign();
    for (let i = 0; i < 5; i++)
      await id.identify(req({ authorization: `Bearer ${token}` }), NOW + i * 1000);
    expect(id.stats()).toMatchObject({ verifications: 1, cacheHits: 4 });
    // exp = NOW + 600 s; skew 30 s
    expect((await id.identify(req({ authorization: `Bearer ${token}` }), NOW + 629_000)).kind).toBe(
      "verified",
    );
    expect(
      await id.identify(req({ authorization: `Bearer ${token}` }), NOW + 631_000),
    ).toMatchObject({
      kind: "invalid",
      reason: "identity.expired",
    });
  });

  it("shares one verification between concurrent requests and remembers a bad signature", async () => {
    const k1 = await keyPair("k1");
    const forger = await keyPair("k1");
    const id = createIdentifier({ keys: createDevKeySource({ keys: [k1.jwk] }) }, identity());
    const token = await k1.sign();
    await Promise.all(
      Array.from({ length: 10 }, () => id.identify(req({ authorization: `Bearer ${token}` }), NOW)),
    );
    expect(id.stats().verifications).toBe(1);
    const forged = await forger.sign();
    for (let i = 0; i < 10; i++) {
      expect(await id.identify(req({ authorization: `Bearer ${forged}` }), NOW)).toMatchObject({
        reason: "identity.bad_signature",
      });
    }
    expect(id.stats().verifications).toBe(2);
  });

  it("tolerates clock skew on both sides", async () => {
    const k1 = await keyPair("k1");
    const id = createIdentifier(
      { keys: createDevKeySource({ keys: [k1.jwk] }) },
      identity({ clock_skew_seconds: 60 }),
    );
    const early = await k1.sign({ nbf: Math.floor(NOW / 1000) + 45 });
    expect((await id.identify(req({ authorization: `Bearer ${early}` }), NOW)).kind).toBe(
      "verified",
    );
    const tooEarly = await k1.sign({ nbf: Math.floor(NOW / 1000) + 120 });
    expect(await id.identify(req({ authorization: `Bearer ${tooEarly}` }), NOW)).toMatchObject({
      reason: "identity.not_yet_valid",
    });
  });

  it("reads the cookie and Envoy's jwt_authn payload, and refuses non-Bearer schemes", async () => {
    const k1 = await keyPair("k1");
    const id = createIdentifier(
      { keys: createDevKeySource({ keys: [k1.jwk] }) },
      identity({ sources: { cookie: "rg_session", jwt_authn: { enabled: true } } }),
    );
    const token = await k1.sign();
    expect(await id.identify(req({ cookie: `a=1; rg_session=${token}; b=2` }), NOW)).toMatchObject({
      kind: "verified",
      source: "cookie",
    });
    const meta = {
      "envoy.filters.http.jwt_authn": { jwt_payload: { sub: "carol", exp: NOW / 1000 + 60 } },
    };
    expect(await id.identify(req({}, meta), NOW)).toMatchObject({
      kind: "verified",
      source: "jwt_authn",
    });
    const stale = {
      "envoy.filters.http.jwt_authn": { jwt_payload: { sub: "carol", exp: NOW / 1000 - 600 } },
    };
    expect(await id.identify(req({}, stale), NOW)).toMatchObject({ reason: "identity.expired" });
    expect(
      await id.identify(req({ authorization: "Basic YWxhZGRpbjpvcGVuc2VzYW1l" }), NOW),
    ).toMatchObject({
      reason: "identity.malformed",
    });
    expect(await id.identify(req({}), NOW)).toEqual({ kind: "anonymous" });
    const missingExp = await new SignJWT({ sub: "x" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer("https://issuer.test")
      .setAudience("api")
      .sign((await generateKeyPair("ES256")).privateKey);
    expect((await id.identify(req({ authorization: `Bearer ${missingExp}` }), NOW)).kind).toBe(
      "invalid",
    );
  });
});

describe("dev keys", () => {
  it("are created once (private key 0600), reused, and mint tokens the dev key source trusts", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "rg-dev-")), "keys");
    const first = await loadOrCreateDevKeys(dir);
    const again = await loadOrCreateDevKeys(dir);
    expect(again.kid).toBe(first.kid);
    expect(statSync(join(dir, "private.jwk.json")).mode & 0o777).toBe(0o600);
    expect(JSON.stringify(first.publicJwks)).not.toContain('"d"');
    const token = await mintDevToken(first, {
      iss: "https://issuer.test",
      aud: "api",
      sub: "dana",
      tier: "pro",
      amr: ["pwd", "mfa"],
      ttlSeconds: 600,
      nowMs: NOW,
    });
    const id = createIdentifier({ keys: createDevKeySource(again.publicJwks) }, identity());
    expect(await id.identify(req({ authorization: `Bearer ${token}` }), NOW)).toMatchObject({
      kind: "verified",
      claims: { sub: "dana", tier: "pro", amr: ["pwd", "mfa"], auth_time: NOW / 1000 },
    });
  });
});
