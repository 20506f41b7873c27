import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { createIdentifier } from "../../src/access/identity.js";
import { createFileKeySource } from "../../src/access/key-source.js";
import {
  createDevKeySource,
  DEV_KEY_ALG,
  loadOrCreateDevKeys,
  mintDevToken,
} from "../../src/cli/dev-keys.js";
import { bearer, identityPolicy, NOW, NOW_SEC } from "../helpers/jwt.js";

const freshDir = () => join(mkdtempSync(join(tmpdir(), "rg-dev-")), "nested", "keys");

describe("dev keys", () => {
  it("are created once (dir created, private key 0600), then reused with the same kid", async () => {
    const dir = freshDir();
    const first = await loadOrCreateDevKeys(dir);
    expect(statSync(join(dir, "private.jwk.json")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(["jwks.json", "private.jwk.json"]);
    const again = await loadOrCreateDevKeys(dir);
    expect(again.kid).toBe(first.kid);
    expect(again.publicJwks).toEqual(first.publicJwks);
    expect(first.kid).toMatch(/^dev-/);
  });

  it("publish only the public key, as jwks.json", async () => {
    const dir = freshDir();
    const keys = await loadOrCreateDevKeys(dir);
    const published = JSON.parse(readFileSync(join(dir, "jwks.json"), "utf8"));
    expect(published).toEqual(keys.publicJwks);
    expect(published.keys).toHaveLength(1);
    expect(published.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", kid: keys.kid, use: "sig" });
    expect(published.keys[0]).not.toHaveProperty("d");
    // a deleted jwks.json comes back from the private key
    rmSync(join(dir, "jwks.json"));
    await loadOrCreateDevKeys(dir);
    expect(JSON.parse(readFileSync(join(dir, "jwks.json"), "utf8"))).toEqual(keys.publicJwks);
  });

  it("are one key pair when several workers create them at once", async () => {
    const dir = freshDir();
    const loaded = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateDevKeys(dir)));
    expect(new Set(loaded.map((k) => k.kid)).size).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(["jwks.json", "private.jwk.json"]);
  });

  it("refuse a private key file that is not an ES256 private JWK", async () => {
    const dir = freshDir();
    await loadOrCreateDevKeys(dir);
    writeFileSync(join(dir, "private.jwk.json"), JSON.stringify({ kty: "oct", k: "c2VjcmV0" }));
    await expect(loadOrCreateDevKeys(dir)).rejects.toThrow(/not an ES256 private JWK/);
  });

  it("mint tokens the dev key source verifies, with every claim riskgate reads", async () => {
    const keys = await loadOrCreateDevKeys(freshDir());
    const token = await mintDevToken(keys, {
      iss: "https://issuer.test",
      aud: "api",
      sub: "dana",
      tier: "pro",
      org: "acme",
      entitlements: ["reports", "export"],
      amr: ["pwd", "mfa"],
      acr: "urn:rg:loa:2",
      ttlSeconds: 600,
      nowMs: NOW + 999,
      extra: { device: "d-1" },
    });
    expect(decodeProtectedHeader(token)).toEqual({ alg: DEV_KEY_ALG, kid: keys.kid, typ: "JWT" });
    const id = createIdentifier({ keys: createDevKeySource(keys.publicJwks) }, identityPolicy());
    await id.ready();
    const outcome = await id.identify(bearer(token), NOW);
    expect(outcome).toEqual({
      kind: "verified",
      source: "bearer",
      cached: false,
      caller: expect.objectContaining({ subject: "dana", tier: "pro", acr: "urn:rg:loa:2" }),
      claims: {
        iss: "https://issuer.test",
        aud: "api",
        sub: "dana",
        tier: "pro",
        org: "acme",
        entitlements: ["reports", "export"],
        amr: ["pwd", "mfa"],
        acr: "urn:rg:loa:2",
        device: "d-1",
        iat: NOW_SEC,
        auth_time: NOW_SEC,
        exp: NOW_SEC + 600,
      },
    });
    // exp = iat + ttl, honoured with the default 30 s skew
    expect(await id.identify(bearer(token), NOW + 629_000)).toMatchObject({ kind: "verified" });
    expect(await id.identify(bearer(token), NOW + 630_000)).toMatchObject({
      reason: "identity.expired",
    });
  });

  it("omit the optional claims that were not given, and verify through the published jwks.json", async () => {
    const dir = freshDir();
    const keys = await loadOrCreateDevKeys(dir);
    const token = await mintDevToken(keys, {
      iss: "https://issuer.test",
      aud: "api",
      sub: "eve",
      ttlSeconds: 60,
      nowMs: NOW,
    });
    const id = createIdentifier(
      { keys: createFileKeySource({ file: join(dir, "jwks.json") }) },
      identityPolicy(),
    );
    await id.ready();
    const outcome = await id.identify(bearer(token), NOW);
    expect(outcome.kind === "verified" && Object.keys(outcome.claims).sort()).toEqual([
      "aud",
      "auth_time",
      "exp",
      "iat",
      "iss",
      "sub",
    ]);
  });

  it("are not trusted for tokens another key signed with the dev kid", async () => {
    const keys = await loadOrCreateDevKeys(freshDir());
    const other = await loadOrCreateDevKeys(freshDir());
    const forged = await mintDevToken(
      { privateKey: other.privateKey, kid: keys.kid },
      { iss: "https://issuer.test", aud: "api", sub: "mallory", ttlSeconds: 60, nowMs: NOW },
    );
    const id = createIdentifier({ keys: createDevKeySource(keys.publicJwks) }, identityPolicy());
    expect(await id.identify(bearer(forged), NOW)).toMatchObject({
      reason: "identity.bad_signature",
    });
  });
});
