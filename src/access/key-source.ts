import { readFile } from "node:fs/promises";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from "jose";
import { RiskgateError } from "../errors.js";
import type { PolicyDocument } from "./policy.js";

/** Where the issuer's public keys come from. */
export interface KeySource {
  /** jose key resolver for `jwtVerify`. */
  readonly getKey: JWTVerifyGetKey;
  /**
   * Resolves once keys were loaded at least once (health turns SERVING after it); rejects with
   * a RiskgateError `RISKGATE_JWKS_UNAVAILABLE`.
   */
  ready(): Promise<void>;
  /** For logs: "jwks uri https://...", "jwks file /etc/...". Never holds credentials. */
  readonly description: string;
}

export interface RemoteKeySourceOptions {
  readonly uri: string;
  /** How long fetched keys are used before they are fetched again. */
  readonly cacheMaxAgeMs: number;
  /**
   * An unknown `kid` refetches at most once per this interval (rate limit on key rotation); a
   * failed fetch is not retried for this long either.
   */
  readonly cooldownMs: number;
  /** Bound of one fetch. */
  readonly timeoutMs: number;
  /** Injected in tests (jose's `customFetch`). */
  readonly fetch?: typeof fetch;
}

/**
 * Errors that are about the token's header meeting the key set (no key for the kid, several
 * keys fit, an alg the set cannot serve), not about the key set being unreachable.
 */
export function isKeySelectionError(err: unknown): boolean {
  return (
    err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWKSMultipleMatchingKeys ||
    err instanceof errors.JOSENotSupported
  );
}

/**
 * JWKS over HTTP(S) with jose's remote key set: cached for `cacheMaxAgeMs`, refetched on an
 * unknown `kid` at most once per `cooldownMs`, each fetch bounded by `timeoutMs`. When a refresh
 * fails, the keys of the last good fetch stay in use and the endpoint is left alone for
 * `cooldownMs`, so an issuer outage neither rejects tokens signed with known keys nor makes every
 * request wait for a fetch timeout.
 */
export function createRemoteKeySource(options: RemoteKeySourceOptions): KeySource {
  const url = new URL(options.uri);
  const shown = withoutCredentials(url);
  const remote = createRemoteJWKSet(url, {
    cacheMaxAge: options.cacheMaxAgeMs,
    cooldownDuration: options.cooldownMs,
    timeoutDuration: options.timeoutMs,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });
  // jose measures its cache age and cooldown with Date.now(), so the back-off does too
  let retryAfter = 0;
  let lastGood: JWTVerifyGetKey | undefined;
  let loading: Promise<void> | undefined;

  const unavailable = (err: unknown) =>
    new RiskgateError(
      "RISKGATE_JWKS_UNAVAILABLE",
      `JWKS ${shown}: ${reason(err)}`,
      { uri: shown },
      { cause: err },
    );

  /** The keys jose holds from its last successful fetch, however old. */
  const staleKeys = (): JWTVerifyGetKey | undefined => {
    if (lastGood === undefined) {
      const jwks = remote.jwks();
      if (jwks !== undefined) lastGood = createLocalJWKSet(jwks);
    }
    return lastGood;
  };

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (Date.now() < retryAfter) {
      const stale = staleKeys();
      if (stale === undefined) throw unavailable(new Error("recent fetch failed"));
      return stale(header, token);
    }
    try {
      const key = await remote(header, token);
      lastGood = undefined;
      return key;
    } catch (err) {
      if (isKeySelectionError(err)) throw err;
      retryAfter = Date.now() + options.cooldownMs;
      const stale = staleKeys();
      if (stale === undefined) throw unavailable(err);
      return stale(header, token);
    }
  };

  return {
    getKey,
    description: `jwks uri ${shown}`,
    ready() {
      if (remote.jwks() !== undefined) return Promise.resolve();
      // one fetch however many callers wait; a failed one is retried by the next call
      loading ??= remote
        .reload()
        .then(
          () => {
            retryAfter = 0;
            lastGood = undefined;
          },
          (err: unknown) => {
            throw unavailable(err);
          },
        )
        .finally(() => {
          loading = undefined;
        });
      return loading;
    },
  };
}

/** A JWKS from a local JSON file, read by `ready()` (once it succeeded, later calls resolve at once). */
/**
 * The key source a policy's `identity.jwks` names (a URI, else a file), or undefined when it
 * names none: the caller decides what stands in (dev keys, `--jwks`, jwt_authn only, an error).
 */
export function keySourceOfPolicy(
  jwks: PolicyDocument["identity"]["jwks"],
  options: { fetch?: typeof fetch } = {},
): KeySource | undefined {
  if (jwks?.uri !== undefined) {
    return createRemoteKeySource({
      uri: jwks.uri,
      cacheMaxAgeMs: jwks.cache_max_age_seconds * 1000,
      cooldownMs: jwks.cooldown_seconds * 1000,
      timeoutMs: jwks.timeout_ms,
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    });
  }
  if (jwks?.file !== undefined) return createFileKeySource({ file: jwks.file });
  return undefined;
}

export function createFileKeySource(options: { file: string }): KeySource {
  let resolver: JWTVerifyGetKey | undefined;
  let loading: Promise<void> | undefined;
  return {
    description: `jwks file ${options.file}`,
    getKey: (header, token) => {
      if (resolver === undefined) {
        throw new RiskgateError("RISKGATE_JWKS_UNAVAILABLE", `JWKS ${options.file} not loaded`, {
          file: options.file,
        });
      }
      return resolver(header, token);
    },
    ready() {
      if (resolver !== undefined) return Promise.resolve();
      loading ??= (async () => {
        try {
          const jwks = JSON.parse(await readFile(options.file, "utf8")) as JSONWebKeySet;
          resolver = createLocalJWKSet(jwks);
        } catch (err) {
          throw new RiskgateError(
            "RISKGATE_JWKS_UNAVAILABLE",
            `JWKS ${options.file}: ${reason(err)}`,
            { file: options.file },
            { cause: err },
          );
        } finally {
          loading = undefined;
        }
      })();
      return loading;
    },
  };
}

/** A key source over an in-memory JWKS (dev keys, tests). */
export function createStaticKeySource(jwks: JSONWebKeySet, description: string): KeySource {
  const resolver = createLocalJWKSet(jwks);
  return { getKey: resolver, description, ready: () => Promise.resolve() };
}

/** The URI for logs: user and password removed. */
function withoutCredentials(url: URL): string {
  if (url.username === "" && url.password === "") return url.href;
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

/** A short reason from an error, following `cause` of fetch's "fetch failed". */
function reason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}
