import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { exportJWK, type JWK, SignJWT } from "jose";

/** The signing key of the simulated identity provider. */
export interface EvalKeys {
  readonly privateKey: KeyObject;
  readonly kid: string;
  readonly publicJwks: { keys: JWK[] };
}

/**
 * An Ed25519 key derived from the seed (Ed25519 signatures are deterministic, so the same seed
 * writes byte-identical tokens). Only the public half is written out.
 */
export async function deriveEvalKeys(seed: string): Promise<EvalKeys> {
  const d = createHash("sha256").update(`riskgate-eval-key:${seed}`).digest();
  // PKCS#8 wrapping of a raw Ed25519 private key (RFC 8410).
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), d]);
  const privateKey = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const jwk = await exportJWK(createPublicKey(privateKey));
  const kid = `eval-${createHash("sha256")
    .update(jwk.x ?? "")
    .digest("hex")
    .slice(0, 12)}`;
  return { privateKey, kid, publicJwks: { keys: [{ ...jwk, kid, alg: "EdDSA", use: "sig" }] } };
}

/** Mints one JWT as the simulated identity provider would; `claims` are all but iss, aud, iat, exp. */
export function mintToken(
  keys: EvalKeys,
  issuer: string,
  audience: string,
  iat: number,
  exp: number,
  claims: Readonly<Record<string, unknown>>,
): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: "EdDSA", kid: keys.kid, typ: "JWT" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(keys.privateKey);
}
