import { randomBytes } from "node:crypto";
import { errors, type JWTPayload, jwtVerify, SignJWT } from "jose";
import type { ClearanceFact } from "../access/request.js";
import type { Binding } from "./binding.js";
import { CLEARANCE_ALG, type ClearanceKeys } from "./keys.js";

/** JWS `typ` of a challenge: a clearance can never be passed off as one, nor the reverse. */
export const CHALLENGE_TYP = "riskgate-challenge+jwt";
export const CLEARANCE_TYP = "riskgate-clearance+jwt";

/** What an issued challenge says; signed, so the page cannot lower its difficulty. */
export interface ChallengeClaims extends Binding {
  /** Single-use nonce (the puzzle's prefix for a proof of work). */
  readonly nonce: string;
  /** `pow`, `turnstile`, `hcaptcha` or `recaptcha`. */
  readonly mechanism: string;
  /** Leading zero bits asked (proof of work). */
  readonly bits: number;
  /** Where the browser returns after a pass: a same-host path. */
  readonly ret: string;
  /** The host the challenge was issued for (checked against a CAPTCHA's `hostname`). */
  readonly host: string;
  /** The subject it was issued to, or "" for an anonymous caller. */
  readonly sub: string;
  /** True when the route's failure mode lets a request through without the verifier. */
  readonly failOpen: boolean;
  /** Expiry, seconds since epoch. */
  readonly exp: number;
}

/** Signs a challenge (its `exp` included) with the first key of the set. */
export async function signChallenge(keys: ClearanceKeys, c: ChallengeClaims): Promise<string> {
  const { exp, sub, ...rest } = c;
  return new SignJWT({ ...rest, ...(sub === "" ? {} : { sub }) })
    .setProtectedHeader({ alg: CLEARANCE_ALG, kid: keys.signing.kid, typ: CHALLENGE_TYP })
    .setExpirationTime(exp)
    .sign(keys.signing.secret);
}

/** A challenge as issued, or why it is not one: `forged` (not ours) or `expired`. */
export async function verifyChallenge(
  keys: ClearanceKeys,
  token: string,
  nowMs: number,
): Promise<ChallengeClaims | "forged" | "expired"> {
  const payload = await verify(keys, token, CHALLENGE_TYP, nowMs);
  if (typeof payload === "string") return payload;
  const p = payload as Record<string, unknown>;
  if (
    typeof p.nonce !== "string" ||
    typeof p.mechanism !== "string" ||
    typeof p.bits !== "number" ||
    typeof p.ret !== "string" ||
    typeof p.host !== "string" ||
    typeof p.net !== "string" ||
    typeof p.uah !== "string" ||
    typeof p.failOpen !== "boolean" ||
    typeof p.exp !== "number"
  ) {
    return "forged";
  }
  return {
    nonce: p.nonce,
    mechanism: p.mechanism,
    bits: p.bits,
    ret: p.ret,
    host: p.host,
    sub: typeof p.sub === "string" ? p.sub : "",
    net: p.net,
    uah: p.uah,
    failOpen: p.failOpen,
    exp: p.exp,
  };
}

/** What a clearance carries besides iat/exp. */
export interface ClearanceClaims extends Binding {
  /** The subject, or `anon:<session id>` for an anonymous browser. */
  readonly sub: string;
  /** The challenge passed (`pow`, `turnstile`, ...). */
  readonly kind: string;
}

/** Signs a clearance valid from `nowMs` for `ttlSeconds`. */
export function signClearance(
  keys: ClearanceKeys,
  c: ClearanceClaims,
  nowMs: number,
  ttlSeconds: number,
): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  return new SignJWT({ net: c.net, uah: c.uah, kind: c.kind })
    .setProtectedHeader({ alg: CLEARANCE_ALG, kid: keys.signing.kid, typ: CLEARANCE_TYP })
    .setSubject(c.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(keys.signing.secret);
}

/**
 * Reads a clearance cookie for a request from `binding`: `valid` with its subject and kind,
 * or `refused` because it is not ours (`forged`), past its `exp` (`expired`), or carried from
 * another network or user agent than it was issued to.
 */
export async function readClearance(
  keys: ClearanceKeys,
  token: string,
  binding: Binding,
  nowMs: number,
): Promise<ClearanceFact> {
  const payload = await verify(keys, token, CLEARANCE_TYP, nowMs);
  if (payload === "forged" || payload === "expired") return { kind: "refused", why: payload };
  const { sub, net, uah, kind } = payload as Record<string, unknown>;
  if (typeof sub !== "string" || typeof kind !== "string" || typeof payload.iat !== "number") {
    return { kind: "refused", why: "forged" };
  }
  if (net !== binding.net) return { kind: "refused", why: "network" };
  if (uah !== binding.uah) return { kind: "refused", why: "user_agent" };
  return { kind: "valid", subject: sub, mechanism: kind };
}

const NO_KEY = new Uint8Array(randomBytes(32));

async function verify(
  keys: ClearanceKeys,
  token: string,
  typ: string,
  nowMs: number,
): Promise<JWTPayload | "forged" | "expired"> {
  if (token.length > 4096) return "forged";
  try {
    const { payload } = await jwtVerify(
      token,
      // an unknown kid verifies against a key nobody has: refused as any forgery
      (header) => keys.secret(header.kid) ?? NO_KEY,
      {
        algorithms: [CLEARANCE_ALG],
        typ,
        currentDate: new Date(nowMs),
        clockTolerance: 0,
        requiredClaims: ["exp"],
      },
    );
    return payload;
  } catch (err) {
    return err instanceof errors.JWTExpired ? "expired" : "forged";
  }
}
