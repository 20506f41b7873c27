import { readFile } from "node:fs/promises";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from "jose";
import { RiskgateError } from "../errors.js";

/** Where the issuer's public keys come from. */
export interface KeySource {
  /** jose key resolver for `jwtVerify`. */
  readonly getKey: JWTVerifyGetKey;
  /** Resolves once keys were loaded at least once (health turns SERVING after it). */
  ready(): Promise<void>;
  /** For logs: "jwks uri https://...", "jwks file /etc/...". */
  readonly description: string;
}

export interface RemoteKeySourceOptions {
  readonly uri: string;
  /** How long fetched keys are used before they are fetched again. */
  readonly cacheMaxAgeMs: number;
  /** An unknown `kid` refetches at most once per this interval (rate limit on key rotation). */
  readonly cooldownMs: number;
  readonly timeoutMs: number;
  /** Injected in tests. */
  readonly fetch?: typeof fetch;
}

/**
 * JWKS over HTTP(S) with jose's remote key set: cached for `cacheMaxAgeMs`, refetched on an
 * unknown `kid` at most once per `cooldownMs`, each fetch bounded by `timeoutMs`.
 */
export function createRemoteKeySource(options: RemoteKeySourceOptions): KeySource {
  const jwks = createRemoteJWKSet(new URL(options.uri), {
    cacheMaxAge: options.cacheMaxAgeMs,
    cooldownDuration: options.cooldownMs,
    timeoutDuration: options.timeoutMs,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });
  return {
    getKey: jwks,
    description: `jwks uri ${options.uri}`,
    async ready() {
      try {
        await jwks.reload();
      } catch (err) {
        throw new RiskgateError(
          "RISKGATE_JWKS_UNAVAILABLE",
          `JWKS ${options.uri}: ${(err as Error).message}`,
          { uri: options.uri },
          { cause: err },
        );
      }
    },
  };
}

/** A JWKS from a local JSON file, read once by `ready()`. */
export function createFileKeySource(options: { file: string }): KeySource {
  let resolver: JWTVerifyGetKey | undefined;
  return {
    description: `jwks file ${options.file}`,
    getKey: (header, token) => {
      if (resolver === undefined) {
        throw new RiskgateError("RISKGATE_JWKS_UNAVAILABLE", `JWKS ${options.file} not loaded`);
      }
      return resolver(header, token);
    },
    async ready() {
      try {
        const jwks = JSON.parse(await readFile(options.file, "utf8")) as JSONWebKeySet;
        resolver = createLocalJWKSet(jwks);
      } catch (err) {
        throw new RiskgateError(
          "RISKGATE_JWKS_UNAVAILABLE",
          `JWKS ${options.file}: ${(err as Error).message}`,
          { file: options.file },
          { cause: err },
        );
      }
    },
  };
}

/** A key source over an in-memory JWKS (dev keys, tests). */
export function createStaticKeySource(jwks: JSONWebKeySet, description: string): KeySource {
  const resolver = createLocalJWKSet(jwks);
  return { getKey: resolver, description, ready: () => Promise.resolve() };
}
