import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from "jose";
import { createStaticKeySource, type KeySource } from "../access/key-source.js";

/** The dev key's algorithm. */
export const DEV_KEY_ALG = "ES256";

export interface DevKeys {
  readonly privateKey: CryptoKey;
  readonly publicJwks: { keys: JWK[] };
  readonly kid: string;
}

/**
 * Loads the dev signing key pair from `dir`, generating it on first use (private key file
 * mode 0600). Dev keys exist so `riskgate token` and `riskgate serve --dev` work out of the box;
 * they are never committed (the folder is git-ignored) and never trusted outside dev mode.
 */
export async function loadOrCreateDevKeys(dir: string): Promise<DevKeys> {
  const privateFile = join(dir, "private.jwk.json");
  const publicFile = join(dir, "jwks.json");
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(await readFile(privateFile, "utf8")) as JWK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    const pair = await generateKeyPair(DEV_KEY_ALG, { extractable: true });
    privateJwk = await exportJWK(pair.privateKey);
    privateJwk.kid = `dev-${(await calculateJwkThumbprint(privateJwk)).slice(0, 16)}`;
    privateJwk.alg = DEV_KEY_ALG;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(privateFile, JSON.stringify(privateJwk), { mode: 0o600, flag: "wx" }).catch(
      async (e: NodeJS.ErrnoException) => {
        // another process (a sibling worker) created it first: use theirs
        if (e.code !== "EEXIST") throw e;
        privateJwk = JSON.parse(await readFile(privateFile, "utf8")) as JWK;
      },
    );
    const { d: _secret, ...published } = privateJwk;
    await writeFile(publicFile, JSON.stringify({ keys: [{ ...published, use: "sig" }] }));
  }
  const { d: _d, ...publicJwk } = privateJwk;
  const privateKey = (await importJWK(privateJwk, DEV_KEY_ALG)) as CryptoKey;
  return {
    privateKey,
    publicJwks: { keys: [{ ...publicJwk, use: "sig" }] },
    kid: privateJwk.kid as string,
  };
}

/** A key source trusting the dev public key. */
export function createDevKeySource(publicJwks: { keys: JWK[] }): KeySource {
  return createStaticKeySource(publicJwks, "dev key (RISKGATE_DEV)");
}

export interface DevTokenClaims {
  readonly iss: string;
  readonly aud: string;
  readonly sub: string;
  readonly tier?: string;
  readonly org?: string;
  readonly entitlements?: string[];
  readonly amr?: string[];
  readonly acr?: string;
  readonly ttlSeconds: number;
  readonly nowMs?: number;
  readonly extra?: Record<string, unknown>;
}

/** Mints a dev JWT: auth_time = iat, exp = iat + ttl. */
export async function mintDevToken(
  keys: Pick<DevKeys, "privateKey" | "kid">,
  claims: DevTokenClaims,
): Promise<string> {
  const iat = Math.floor((claims.nowMs ?? Date.now()) / 1000);
  const payload: Record<string, unknown> = {
    auth_time: iat,
    ...(claims.tier === undefined ? {} : { tier: claims.tier }),
    ...(claims.org === undefined ? {} : { org: claims.org }),
    ...(claims.entitlements === undefined ? {} : { entitlements: claims.entitlements }),
    ...(claims.amr === undefined ? {} : { amr: claims.amr }),
    ...(claims.acr === undefined ? {} : { acr: claims.acr }),
    ...claims.extra,
  };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: DEV_KEY_ALG, kid: keys.kid, typ: "JWT" })
    .setIssuer(claims.iss)
    .setAudience(claims.aud)
    .setSubject(claims.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + claims.ttlSeconds)
    .sign(keys.privateKey);
}
