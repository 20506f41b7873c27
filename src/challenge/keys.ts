import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RiskgateError } from "../errors.js";

/**
 * riskgate's own signing keys for challenges and clearances: HMAC (HS256) secrets, since the
 * signer and the verifier are the same service. The first key signs; every key verifies, so a
 * rotation adds the new key first and drops the old one once its clearances have expired.
 */
export interface ClearanceKeys {
  /** The kid and secret new tokens are signed with. */
  readonly signing: { readonly kid: string; readonly secret: Uint8Array };
  /** The secret of `kid`, or undefined when the set has no such key. */
  secret(kid: string | undefined): Uint8Array | undefined;
}

/** The only algorithm riskgate signs and accepts its own tokens with. */
export const CLEARANCE_ALG = "HS256";

/** RFC 7518 3.2: an HS256 key must be at least as long as the hash output (32 bytes). */
const MIN_SECRET_BYTES = 32;

/** A key set from secrets in order (first signs). Throws a TypeError on misuse. */
export function clearanceKeysOf(
  keys: readonly { readonly kid: string; readonly secret: Uint8Array }[],
): ClearanceKeys {
  const first = keys[0];
  if (first === undefined) throw new TypeError("a clearance key set needs at least one key");
  const byKid = new Map<string, Uint8Array>();
  for (const k of keys) {
    if (k.kid === "" || byKid.has(k.kid)) throw new TypeError(`duplicate or empty kid ${k.kid}`);
    if (k.secret.length < MIN_SECRET_BYTES) {
      throw new TypeError(`key ${k.kid} is shorter than ${MIN_SECRET_BYTES} bytes`);
    }
    byKid.set(k.kid, k.secret);
  }
  return Object.freeze({
    signing: first,
    secret: (kid: string | undefined) => (kid === undefined ? undefined : byKid.get(kid)),
  });
}

/**
 * Dev mode's key set: `clearance-keys.json` in the dev keys folder, made on first use. Every
 * `--workers` process reads the same file (the first to write it wins, atomically), so a
 * clearance one worker set is good on the others and across restarts.
 */
export async function devClearanceKeys(dir: string): Promise<ClearanceKeys> {
  const file = join(dir, "clearance-keys.json");
  try {
    return await loadClearanceKeys(file);
  } catch {
    // not made yet (or unreadable): make one below
  }
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  const jwk = { kty: "oct", kid: `dev-${randomBytes(4).toString("hex")}`, alg: CLEARANCE_ALG };
  const k = randomBytes(32).toString("base64url");
  await writeFile(tmp, JSON.stringify({ keys: [{ ...jwk, k }] }), { mode: 0o600 });
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return loadClearanceKeys(file);
}

/**
 * Reads a JWK Set file of `oct` keys (`{"keys":[{"kty":"oct","kid":"2026-11","k":"<base64url>"}]}`),
 * as a Kubernetes secret mounts it. RISKGATE_CLEARANCE_KEYS_INVALID when it is unreadable or
 * a key lacks a kid, is not `oct`, or is shorter than 32 bytes.
 */
export async function loadClearanceKeys(file: string): Promise<ClearanceKeys> {
  const fail = (why: string, cause?: unknown) =>
    new RiskgateError(
      "RISKGATE_CLEARANCE_KEYS_INVALID",
      `${file}: ${why}`,
      { file },
      cause === undefined ? undefined : { cause },
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw fail("not a readable JSON file", err);
  }
  const list = (parsed as { keys?: unknown })?.keys;
  if (!Array.isArray(list) || list.length === 0) throw fail("no keys array");
  const keys = list.map((jwk: Record<string, unknown>, i) => {
    if (jwk?.kty !== "oct" || typeof jwk.k !== "string") throw fail(`key ${i} is not an oct JWK`);
    if (typeof jwk.kid !== "string" || jwk.kid === "") throw fail(`key ${i} has no kid`);
    if (jwk.alg !== undefined && jwk.alg !== CLEARANCE_ALG)
      throw fail(`key ${i}: alg must be HS256`);
    return { kid: jwk.kid, secret: new Uint8Array(Buffer.from(jwk.k, "base64url")) };
  });
  try {
    return clearanceKeysOf(keys);
  } catch (err) {
    throw fail((err as Error).message);
  }
}
