import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createIdentifier } from "../../src/access/identity.js";
import { createFileKeySource, createRemoteKeySource } from "../../src/access/key-source.js";
import {
  bearer,
  deadUri,
  identityPolicy,
  type JwksServer,
  NOW,
  startJwksServer,
  testKey,
} from "../helpers/jwt.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Waits (on real timers, so the faked Date stays put) until the issuer saw a request. */
async function until(seen: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !seen(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(seen()).toBe(true);
}

async function server(...args: Parameters<typeof startJwksServer>): Promise<JwksServer> {
  const s = await startJwksServer(...args);
  cleanups.push(s.close);
  return s;
}

describe("remote JWKS served over HTTP on 127.0.0.1", () => {
  // jose measures its cache age and cooldown with Date.now(): only Date is faked, so the
  // sockets and fetch timeouts run on real timers while the test moves the clock
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(NOW);
    cleanups.push(() => {
      vi.useRealTimers();
    });
  });
  const at = (ms: number) => vi.setSystemTime(NOW + ms);

  it("fetches the keys once for ready() and verification, however often ready() is asked", async () => {
    const k1 = await testKey("k1");
    const jwks = await server([k1.jwk]);
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 2000,
    });
    expect(keys.description).toBe(`jwks uri ${jwks.uri}`);
    const id = createIdentifier({ keys }, identityPolicy());
    await Promise.all([id.ready(), id.ready(), keys.ready()]);
    await id.ready();
    expect(jwks.hits()).toBe(1);
    for (let i = 0; i < 5; i++) {
      const token = await k1.sign({ claims: { sub: `user-${i}` } });
      expect(await id.identify(bearer(token), NOW)).toMatchObject({ kind: "verified" });
    }
    expect(id.stats().verifications).toBe(5);
    expect(jwks.hits()).toBe(1);
  });

  it("follows a key rotation: an unknown kid refetches once the cooldown has passed", async () => {
    const k1 = await testKey("k1");
    const k2 = await testKey("k2");
    const jwks = await server([k1.jwk]);
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 2000,
    });
    const id = createIdentifier({ keys }, identityPolicy());
    await id.ready();
    jwks.setKeys([k1.jwk, k2.jwk]);
    const rotated = await k2.sign();
    // within the cooldown of the first fetch the new kid is unknown, and not remembered so
    at(5_000);
    expect(await id.identify(bearer(rotated), NOW)).toMatchObject({
      kind: "invalid",
      reason: "identity.unknown_key",
    });
    expect(jwks.hits()).toBe(1);
    at(31_000);
    expect(await id.identify(bearer(rotated), NOW)).toMatchObject({ kind: "verified" });
    expect(jwks.hits()).toBe(2);
    // tokens of the old key still verify from the refreshed set, without a fetch
    expect(await id.identify(bearer(await k1.sign()), NOW)).toMatchObject({ kind: "verified" });
    expect(jwks.hits()).toBe(2);
  });

  it("a flood of unknown kids refetches at most once per cooldown", async () => {
    const k1 = await testKey("k1");
    const jwks = await server([k1.jwk]);
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 2000,
    });
    const id = createIdentifier({ keys }, identityPolicy());
    await id.ready();
    const strangers = await Promise.all(
      Array.from({ length: 3 }, (_, i) => testKey(`stranger-${i}`)),
    );
    const tokens = await Promise.all(
      Array.from({ length: 30 }, (_, i) => strangers[i % 3]?.sign({ claims: { sub: `x${i}` } })),
    );
    const flood = () => Promise.all(tokens.map((t) => id.identify(bearer(t as string), NOW)));

    for (const [clock, expectedHits] of [
      [1_000, 1], // inside the first fetch's cooldown: no fetch at all
      [31_000, 2], // cooldown over: the whole flood shares one fetch
      [32_000, 2],
      [60_000, 2],
      [62_000, 3],
    ] as const) {
      at(clock);
      const outcomes = await flood();
      expect(
        outcomes.every((o) => o.kind === "invalid" && o.reason === "identity.unknown_key"),
      ).toBe(true);
      expect(jwks.hits()).toBe(expectedHits);
    }
  });

  it("keeps verifying with the last good keys while the issuer is slow or down, asking it once per cooldown", async () => {
    const k1 = await testKey("k1");
    const jwks = await server([k1.jwk]);
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 10_000,
      cooldownMs: 30_000,
      // longer than any test: a request that waited for the hung issuer would never finish
      timeoutMs: 600_000,
    });
    const id = createIdentifier({ keys }, identityPolicy());
    await id.ready();
    jwks.hang();
    const fresh = async (clock: number) => {
      at(clock);
      return id.identify(bearer(await k1.sign({ claims: { sub: `s${clock}` } })), NOW);
    };
    // an unknown kid joins the fetch in flight (when there is one): its answer says it settled
    const stranger = await (await testKey("stranger")).sign();
    const settled = async () =>
      expect(await id.identify(bearer(stranger), NOW)).toMatchObject({
        reason: "identity.unknown_key",
      });
    // the cache is stale: the known key verifies at once while one refresh asks the issuer
    expect(await fresh(11_000)).toMatchObject({ kind: "verified" });
    await until(() => jwks.hits() === 2);
    expect(await fresh(12_000)).toMatchObject({ kind: "verified" });
    expect(jwks.hits()).toBe(2);
    // the issuer fails: nothing asks it again for a cooldown after the failure
    jwks.setStatus(503);
    jwks.release();
    await settled();
    expect(await fresh(41_000)).toMatchObject({ kind: "verified" });
    expect(jwks.hits()).toBe(2);
    expect(await fresh(42_001)).toMatchObject({ kind: "verified" });
    await until(() => jwks.hits() === 3);
    await settled();
    // back up: the next refresh after the back-off succeeds and later ones use the fresh set
    jwks.setStatus(200);
    expect(await fresh(72_002)).toMatchObject({ kind: "verified" });
    await until(() => jwks.hits() === 4);
    await settled();
    expect(await fresh(73_000)).toMatchObject({ kind: "verified" });
    expect(jwks.hits()).toBe(4);
  });

  it("server down: ready() rejects with RISKGATE_JWKS_UNAVAILABLE and tokens get identity.keys_unavailable", async () => {
    const k1 = await testKey("k1");
    const keys = createRemoteKeySource({
      uri: await deadUri(),
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 1000,
    });
    const id = createIdentifier({ keys }, identityPolicy());
    await expect(id.ready()).rejects.toMatchObject({
      name: "RiskgateError",
      code: "RISKGATE_JWKS_UNAVAILABLE",
    });
    const token = await k1.sign();
    const outcome = await id.identify(bearer(token), NOW);
    expect(outcome).toMatchObject({ kind: "invalid", reason: "identity.keys_unavailable" });
    expect(JSON.stringify(outcome)).not.toContain(token);
  });

  it("an error status is keys_unavailable, never held against the token: it verifies once the issuer answers", async () => {
    const k1 = await testKey("k1");
    const jwks = await server([k1.jwk]);
    jwks.setStatus(500);
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 2000,
    });
    const id = createIdentifier({ keys }, identityPolicy());
    await expect(id.ready()).rejects.toMatchObject({ code: "RISKGATE_JWKS_UNAVAILABLE" });
    const token = await k1.sign();
    expect(await id.identify(bearer(token), NOW)).toMatchObject({
      reason: "identity.keys_unavailable",
    });
    // inside the back-off no request waits for the failing issuer
    const hits = jwks.hits();
    expect(await id.identify(bearer(token), NOW)).toMatchObject({
      reason: "identity.keys_unavailable",
    });
    expect(jwks.hits()).toBe(hits);
    jwks.setStatus(200);
    await id.ready();
    expect(await id.identify(bearer(token), NOW)).toMatchObject({ kind: "verified" });
  });

  it("a hung issuer: the fetch times out, ready() rejects and tokens get identity.keys_unavailable", async () => {
    const k1 = await testKey("k1");
    const jwks = await server([k1.jwk]);
    jwks.hang();
    const keys = createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 0,
      timeoutMs: 200,
    });
    const id = createIdentifier({ keys }, identityPolicy());
    await expect(id.ready()).rejects.toMatchObject({ code: "RISKGATE_JWKS_UNAVAILABLE" });
    expect(await id.identify(bearer(await k1.sign()), NOW)).toMatchObject({
      reason: "identity.keys_unavailable",
    });
  });

  it("uses an injected fetch, and never shows credentials of the URI", async () => {
    const k1 = await testKey("k1");
    const seen: string[] = [];
    const fakeFetch = (async (input: string | URL | Request) => {
      seen.push(String(input));
      return new Response(JSON.stringify({ keys: [k1.jwk] }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }) as typeof fetch;
    const keys = createRemoteKeySource({
      uri: "https://svc:hunter2@issuer.test/jwks.json",
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      timeoutMs: 1000,
      fetch: fakeFetch,
    });
    expect(keys.description).toBe("jwks uri https://issuer.test/jwks.json");
    const id = createIdentifier({ keys }, identityPolicy());
    await id.ready();
    expect(await id.identify(bearer(await k1.sign()), NOW)).toMatchObject({ kind: "verified" });
    expect(seen).toHaveLength(1);
  });
});

describe("JWKS file", () => {
  const file = (content: string) => {
    const path = join(mkdtempSync(join(tmpdir(), "rg-jwks-")), "jwks.json");
    writeFileSync(path, content);
    return path;
  };

  it("is read by ready() and verifies tokens", async () => {
    const k1 = await testKey("k1");
    const path = file(JSON.stringify({ keys: [k1.jwk] }));
    const keys = createFileKeySource({ file: path });
    expect(keys.description).toBe(`jwks file ${path}`);
    const id = createIdentifier({ keys }, identityPolicy());
    // before ready() nothing is loaded: the token is not blamed
    expect(await id.identify(bearer(await k1.sign({ claims: { sub: "a" } })), NOW)).toMatchObject({
      reason: "identity.keys_unavailable",
    });
    await id.ready();
    expect(await id.identify(bearer(await k1.sign()), NOW)).toMatchObject({ kind: "verified" });
    expect(await id.identify(bearer(await (await testKey("k2")).sign()), NOW)).toMatchObject({
      reason: "identity.unknown_key",
    });
  });

  it("rejects a missing file, bad JSON and a set that is not a JWKS with RISKGATE_JWKS_UNAVAILABLE", async () => {
    for (const path of [
      "/nonexistent/jwks.json",
      file("{not json"),
      file(JSON.stringify({ keys: "nope" })),
    ]) {
      await expect(createFileKeySource({ file: path }).ready()).rejects.toMatchObject({
        code: "RISKGATE_JWKS_UNAVAILABLE",
      });
    }
  });

  it("refuses to verify with a private key published by mistake", async () => {
    const k1 = await testKey("k1");
    const leaked = { ...(await exportJWK(k1.privateKey)), kid: "k1", alg: "ES256" };
    const id = createIdentifier(
      { keys: createFileKeySource({ file: file(JSON.stringify({ keys: [leaked] })) }) },
      identityPolicy(),
    );
    await id.ready();
    expect(await id.identify(bearer(await k1.sign()), NOW)).toMatchObject({
      reason: "identity.keys_unavailable",
    });
  });
});
