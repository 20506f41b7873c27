import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTHeaderParameters,
  SignJWT,
} from "jose";
import { type PolicyDocument, policySchema } from "../../src/access/policy.js";
import type { AccessRequest } from "../../src/access/request.js";
import { accessRequest as accessRequestWith } from "./access-request.js";

/** The frozen "now" of identity tests. */
export const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
export const NOW_SEC = NOW / 1000;
export const ISSUER = "https://issuer.test";
export const AUDIENCE = "api";

/** The policy's identity section with defaults, issuer https://issuer.test and audience api. */
export function identityPolicy(extra: Record<string, unknown> = {}): PolicyDocument["identity"] {
  return policySchema.parse({
    version: 1,
    identity: { issuers: [ISSUER], audiences: [AUDIENCE], ...extra },
    tiers: { free: {} },
  }).identity;
}

/** An AccessRequest with these headers (lower-case names) and jwt_authn-style metadata. */
export function accessRequest(
  headers: Record<string, string> = {},
  metadata: AccessRequest["metadata"] = {},
): AccessRequest {
  return accessRequestWith({
    id: "r-1",
    host: "api.test",
    path: "/",
    headers: new Map(Object.entries(headers)),
    clientIp: "127.0.0.1",
    metadata,
    receivedAt: NOW,
  });
}

export const bearer = (token: string) => accessRequest({ authorization: `Bearer ${token}` });

export interface SignOptions {
  /** Claims merged over the defaults (sub, tier, iss, aud, iat, exp = iat + 600). `undefined` removes one. */
  readonly claims?: Record<string, unknown>;
  /** Header parameters merged over { alg, kid }. `kid: undefined` removes the kid. */
  readonly header?: Partial<JWTHeaderParameters>;
  readonly nowMs?: number;
}

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  /** The public JWK, as a JWKS publishes it. */
  readonly jwk: JWK;
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
  sign(options?: SignOptions): Promise<string>;
}

/** A fresh signing key (generated per test run; no private key is ever committed). */
export async function testKey(kid: string, alg = "ES256"): Promise<TestKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" };
  return {
    kid,
    alg,
    jwk,
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    async sign(options = {}) {
      const iat = Math.floor((options.nowMs ?? NOW) / 1000);
      const claims: Record<string, unknown> = {
        sub: "alice",
        tier: "pro",
        iss: ISSUER,
        aud: AUDIENCE,
        iat,
        exp: iat + 600,
        ...options.claims,
      };
      for (const [name, value] of Object.entries(claims)) {
        if (value === undefined) delete claims[name];
      }
      const header: JWTHeaderParameters = { alg, kid, ...options.header };
      if (header.kid === undefined) delete header.kid;
      return new SignJWT(claims).setProtectedHeader(header).sign(pair.privateKey);
    },
  };
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A JWT built by hand, for headers jose refuses to produce (alg none). */
export function handBuiltToken(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signature = "",
): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`;
}

export interface JwksServer {
  readonly uri: string;
  /** Requests served so far. */
  hits(): number;
  /** Publish another key set. */
  setKeys(keys: JWK[]): void;
  /** Answer with this status (200 serves the keys; anything else an error body). */
  setStatus(status: number): void;
  /** Hold requests without answering (a hung issuer, or a slow one until `release`). */
  hang(): void;
  /** Answer the held requests (with the keys or status of now) and stop holding. */
  release(): void;
  close(): Promise<void>;
}

/** A JWKS endpoint on 127.0.0.1, port 0, that counts its hits. */
export async function startJwksServer(initial: JWK[]): Promise<JwksServer> {
  let keys = initial;
  let status = 200;
  let hanging = false;
  let hits = 0;
  const held: ServerResponse[] = [];
  const answer = (res: ServerResponse) => {
    if (status !== 200) {
      res.writeHead(status, { "content-type": "text/plain" }).end("unavailable");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
  };
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    hits++;
    if (hanging) held.push(res);
    else answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    uri: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    setKeys: (next) => {
      keys = next;
    },
    setStatus: (next) => {
      status = next;
    },
    hang: () => {
      hanging = true;
    },
    release: () => {
      hanging = false;
      for (const res of held.splice(0)) answer(res);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URI where nothing listens (a port that was just released). */
export async function deadUri(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/jwks.json`;
}
