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
 * JWKS over HTTP(S), fetched with jose's remote key set and read through a local key set of its
 * last good answer. Fetches are shared (one in flight, whoever asks), bounded by `timeoutMs`, and
 * rate-limited: unknown kids start one at most once per `cooldownMs`, and nothing retries a
 * failed one for `cooldownMs`. Keys older than `cacheMaxAgeMs` stay in use while one background
 * fetch replaces them, so no request with a known kid ever waits on the issuer, failing or
 * slow. Only the first load and an unknown kid wait for a fetch;
 * a caller that stops waiting (the decision's time budget) leaves it running for the next one.
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
  // jose measures its cache age with Date.now(), so the rate limit does too
  let lastStart = Number.NEGATIVE_INFINITY;
  let lastFailure = Number.NEGATIVE_INFINITY;
  let local: JWTVerifyGetKey | undefined;
  let fetching: Promise<void> | undefined;

  const unavailable = (err: unknown) =>
    new RiskgateError(
      "RISKGATE_JWKS_UNAVAILABLE",
      `JWKS ${shown}: ${reason(err)}`,
      { uri: shown },
      { cause: err },
    );

  /** The one fetch in flight, started when none is; it swaps the local key set on success. */
  const refresh = (): Promise<void> => {
    fetching ??= (async () => {
      lastStart = Date.now();
      try {
        await remote.reload();
        const jwks = remote.jwks();
        if (jwks !== undefined) local = createLocalJWKSet(jwks);
      } catch (err) {
        lastFailure = Date.now();
        throw unavailable(err);
      } finally {
        fetching = undefined;
      }
    })();
    return fetching;
  };
  const cooled = (at: number) => Date.now() - at >= options.cooldownMs;
  /** Missing or old keys: a fetch is running to join, or none failed a cooldown ago. */
  const mayLoad = () => fetching !== undefined || cooled(lastFailure);
  /** An unknown kid: as above, and none started a cooldown ago (a flood of kids is one fetch). */
  const mayRefetch = () => fetching !== undefined || (cooled(lastStart) && cooled(lastFailure));

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (local === undefined) {
      if (!mayLoad()) throw unavailable(new Error("recent fetch failed"));
      await refresh();
    } else if (!remote.fresh && mayLoad()) {
      // old keys keep verifying while the issuer is asked; a failure only shows in the logs
      refresh().catch(() => undefined);
    }
    const keys = local as JWTVerifyGetKey;
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || !mayRefetch()) throw err;
    }
    // an unknown kid: perhaps a key rotation, so the keys are fetched again (rate-limited)
    await refresh().catch(() => undefined);
    return (local as JWTVerifyGetKey)(header, token);
  };

  return {
    getKey,
    description: `jwks uri ${shown}`,
    ready() {
      // one fetch however many callers wait; a failed one is retried by the next call
      return local !== undefined ? Promise.resolve() : refresh();
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
