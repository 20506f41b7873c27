import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { bindingOf } from "../../src/challenge/binding.js";
import { clearanceKeysOf, devClearanceKeys, loadClearanceKeys } from "../../src/challenge/keys.js";
import { leadingZeroBits, powBits, verifyPow } from "../../src/challenge/pow.js";
import {
  type ChallengeClaims,
  readClearance,
  signChallenge,
  signClearance,
  verifyChallenge,
} from "../../src/challenge/tokens.js";
import { RiskgateError } from "../../src/errors.js";
import { solvePow } from "../helpers/pow.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const secret = (fill: number) => new Uint8Array(32).fill(fill);
const keys = clearanceKeysOf([{ kid: "k2", secret: secret(2) }]);
const UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131";
const here = bindingOf("198.51.100.23", UA);
const claims = { sub: "alice", kind: "pow", ...here };

describe("clearance cookie: signed, bound, short-lived", () => {
  it("verifies for the subject, network and user agent it was issued to", async () => {
    const token = await signClearance(keys, claims, NOW, 1800);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "HS256", kid: "k2" });
    // another address of the same /24 is the same network
    const sameNet = bindingOf("198.51.100.200", UA);
    expect(await readClearance(keys, token, sameNet, NOW + 60_000)).toEqual({
      kind: "valid",
      subject: "alice",
      mechanism: "pow",
    });
  });

  it("is refused from another network or another user agent (replay)", async () => {
    const token = await signClearance(keys, claims, NOW, 1800);
    expect(await readClearance(keys, token, bindingOf("198.51.101.23", UA), NOW)).toEqual({
      kind: "refused",
      why: "network",
    });
    expect(await readClearance(keys, token, bindingOf("198.51.100.23", "curl/8"), NOW)).toEqual({
      kind: "refused",
      why: "user_agent",
    });
  });

  it("binds IPv6 clients to their /48", () => {
    expect(bindingOf("2001:db8:1:2::5", UA).net).toBe(bindingOf("2001:db8:1:ffff::9", UA).net);
    expect(bindingOf("2001:db8:1::5", UA).net).not.toBe(bindingOf("2001:db8:2::5", UA).net);
  });

  it("is refused once expired, and not a second before", async () => {
    const token = await signClearance(keys, claims, NOW, 1800);
    expect((await readClearance(keys, token, here, NOW + 1799_000)).kind).toBe("valid");
    expect(await readClearance(keys, token, here, NOW + 1800_000)).toEqual({
      kind: "refused",
      why: "expired",
    });
  });

  it("refuses forgeries: another key, a tampered payload, alg none, a challenge as clearance", async () => {
    const other = clearanceKeysOf([{ kid: "k2", secret: secret(9) }]);
    const foreign = await signClearance(other, claims, NOW, 1800);
    expect(await readClearance(keys, foreign, here, NOW)).toEqual({
      kind: "refused",
      why: "forged",
    });

    const token = await signClearance(keys, claims, NOW, 1800);
    const [h, , sig] = token.split(".");
    const evil = Buffer.from(JSON.stringify({ ...claims, sub: "root", exp: 9e9, iat: 1 })).toString(
      "base64url",
    );
    expect(await readClearance(keys, `${h}.${evil}.${sig}`, here, NOW)).toEqual({
      kind: "refused",
      why: "forged",
    });

    const none = `${Buffer.from('{"alg":"none","typ":"riskgate-clearance+jwt"}').toString("base64url")}.${Buffer.from(JSON.stringify({ ...claims, exp: 9e9, iat: 1 })).toString("base64url")}.`;
    expect((await readClearance(keys, none, here, NOW)).kind).toBe("refused");

    const challenge = await signChallenge(keys, challengeClaims());
    expect(await readClearance(keys, challenge, here, NOW)).toEqual({
      kind: "refused",
      why: "forged",
    });

    // right key, no typ: not a clearance riskgate issued
    const untyped = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: "HS256", kid: "k2" })
      .setIssuedAt(NOW / 1000)
      .setExpirationTime(NOW / 1000 + 60)
      .sign(secret(2));
    expect(await readClearance(keys, untyped, here, NOW)).toEqual({
      kind: "refused",
      why: "forged",
    });
    expect(await readClearance(keys, "not-a-jwt", here, NOW)).toEqual({
      kind: "refused",
      why: "forged",
    });
  });

  it("rotates: the old key still verifies, a removed kid does not", async () => {
    const old = clearanceKeysOf([{ kid: "k1", secret: secret(1) }]);
    const rotated = clearanceKeysOf([
      { kid: "k2", secret: secret(2) },
      { kid: "k1", secret: secret(1) },
    ]);
    const issuedBefore = await signClearance(old, claims, NOW, 1800);
    expect((await readClearance(rotated, issuedBefore, here, NOW)).kind).toBe("valid");
    const issuedAfter = await signClearance(rotated, claims, NOW, 1800);
    expect(decodeProtectedHeader(issuedAfter).kid).toBe("k2");
    expect(await readClearance(old, issuedAfter, here, NOW)).toEqual({
      kind: "refused",
      why: "forged",
    });
  });

  it("loads a JWK Set file and refuses a bad one with RISKGATE_CLEARANCE_KEYS_INVALID", async () => {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-clearance-"));
    const good = join(dir, "keys.json");
    const k = Buffer.from(secret(7)).toString("base64url");
    writeFileSync(
      good,
      JSON.stringify({ keys: [{ kty: "oct", kid: "2026-11", k, alg: "HS256" }] }),
    );
    const loaded = await loadClearanceKeys(good);
    expect(loaded.signing.kid).toBe("2026-11");
    for (const bad of [
      "not json",
      JSON.stringify({ keys: [] }),
      JSON.stringify({ keys: [{ kty: "oct", k }] }),
      JSON.stringify({ keys: [{ kty: "oct", kid: "short", k: "c2hvcnQ" }] }),
      JSON.stringify({ keys: [{ kty: "EC", kid: "ec", crv: "P-256" }] }),
    ]) {
      const file = join(dir, "bad.json");
      writeFileSync(file, bad);
      await expect(loadClearanceKeys(file)).rejects.toSatisfy(
        (e: unknown) => e instanceof RiskgateError && e.code === "RISKGATE_CLEARANCE_KEYS_INVALID",
      );
    }
  });
});

describe("dev mode's clearance keys", () => {
  it("are made once in the dev keys folder and shared by every process that reads it", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "riskgate-devkeys-")), "keys");
    const [a, b] = await Promise.all([devClearanceKeys(dir), devClearanceKeys(dir)]);
    expect(a.signing.kid).toMatch(/^dev-/);
    expect(b.signing.kid).toBe(a.signing.kid);
    const token = await signClearance(a, claims, NOW, 60);
    expect((await readClearance(await devClearanceKeys(dir), token, here, NOW)).kind).toBe("valid");
  });
});

function challengeClaims(over: Partial<ChallengeClaims> = {}): ChallengeClaims {
  return {
    nonce: "n0nce",
    mechanism: "pow",
    bits: 8,
    ret: "/app",
    host: "app.example.com",
    sub: "",
    failOpen: false,
    exp: NOW / 1000 + 300,
    ...here,
    ...over,
  };
}

describe("signed challenge", () => {
  it("round-trips, expires, and cannot be edited (the page cannot lower its difficulty)", async () => {
    const token = await signChallenge(keys, challengeClaims({ bits: 16 }));
    expect(await verifyChallenge(keys, token, NOW)).toMatchObject({ bits: 16, ret: "/app" });
    expect(await verifyChallenge(keys, token, NOW + 300_000)).toBe("expired");
    const [h, p, sig] = token.split(".");
    const payload = JSON.parse(Buffer.from(p as string, "base64url").toString());
    const easier = Buffer.from(JSON.stringify({ ...payload, bits: 1 })).toString("base64url");
    expect(await verifyChallenge(keys, `${h}.${easier}.${sig}`, NOW)).toBe("forged");
    const clearance = await signClearance(keys, claims, NOW, 60);
    expect(await verifyChallenge(keys, clearance, NOW)).toBe("forged");
  });
});

describe("proof of work", () => {
  it("counts leading zero bits", () => {
    expect(leadingZeroBits(Uint8Array.from([0, 0, 0x80]))).toBe(16);
    expect(leadingZeroBits(Uint8Array.from([0, 0x0f]))).toBe(12);
    expect(leadingZeroBits(Uint8Array.from([0x01]))).toBe(7);
    expect(leadingZeroBits(Uint8Array.from([0, 0]))).toBe(16);
  });

  it("accepts a solved puzzle and refuses a guess or junk", () => {
    const answer = solvePow("abc", 12) as string;
    expect(verifyPow("abc", answer, 12)).toBe(true);
    expect(verifyPow("abc", "", 1)).toBe(false);
    expect(verifyPow("abc", "12a", 1)).toBe(false);
    expect(verifyPow("abc", "1".repeat(16), 0)).toBe(false);
    // a solution for fewer bits than asked is not enough
    let weak = 0;
    while (!verifyPow("abc", String(weak), 4) || verifyPow("abc", String(weak), 12)) weak++;
    expect(verifyPow("abc", String(weak), 12)).toBe(false);
  });

  it("asks more work of a riskier caller, within the configured bounds", () => {
    const cfg = { min_bits: 12, max_bits: 18 };
    expect(powBits(0, cfg)).toBe(12);
    expect(powBits(50, cfg)).toBe(15);
    expect(powBits(100, cfg)).toBe(18);
    expect(powBits(250, cfg)).toBe(18);
  });
});
