import { randomUUID } from "node:crypto";
import { link, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
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
  const privateJwk = (await readJwk(privateFile)) ?? (await createPrivateJwk(dir, privateFile));
  if (privateJwk.kty !== "EC" || privateJwk.crv !== "P-256" || typeof privateJwk.d !== "string") {
    throw new TypeError(`${privateFile} is not an ${DEV_KEY_ALG} private JWK`);
  }
  const { d: _secret, ...publicJwk } = privateJwk;
  const publicJwks = { keys: [{ ...publicJwk, use: "sig" }] };
  await writePublicJwks(join(dir, "jwks.json"), publicJwks);
  const privateKey = (await importJWK(privateJwk, DEV_KEY_ALG)) as CryptoKey;
  return { privateKey, publicJwks, kid: privateJwk.kid as string };
}

async function readJwk(file: string): Promise<JWK | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as JWK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Generates the key pair and publishes it with link(2), which creates the name only if it does
 * not exist and only with the complete file: a sibling worker racing us never reads half a key,
 * and the one that loses uses the winner's key.
 */
async function createPrivateJwk(dir: string, privateFile: string): Promise<JWK> {
  const pair = await generateKeyPair(DEV_KEY_ALG, { extractable: true });
  const jwk = await exportJWK(pair.privateKey);
  jwk.kid = `dev-${(await calculateJwkThumbprint(jwk)).slice(0, 16)}`;
  jwk.alg = DEV_KEY_ALG;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const staging = `${privateFile}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(staging, JSON.stringify(jwk), { mode: 0o600, flag: "wx" });
  try {
    await link(staging, privateFile);
    return jwk;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return (await readJwk(privateFile)) as JWK;
  } finally {
    await rm(staging, { force: true });
  }
}

/** Writes jwks.json (for Envoy's jwt_authn or a policy's jwks.file) when absent or stale. */
async function writePublicJwks(file: string, jwks: { keys: JWK[] }): Promise<void> {
  const text = JSON.stringify(jwks);
  const current = await readFile(file, "utf8").catch(() => undefined);
  if (current === text) return;
  // rename(2) replaces atomically: a reader sees the old file or the new one
  const staging = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(staging, text, { mode: 0o644 });
  await rename(staging, file);
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
