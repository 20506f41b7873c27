import type { ConnectionOptions } from "node:tls";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { RiskgateError } from "../errors.js";

/** Where Redis is and how to reach it: single server, Cluster or Sentinel, TLS or not. */
export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port/db` or `rediss://` (TLS). */
  readonly url?: string;
  /**
   * Redis Cluster seed nodes (`host:port`). When set, `url` only lends its credentials, TLS
   * and nothing else.
   */
  readonly clusterNodes?: readonly string[];
  /** Sentinel nodes (`host:port`) and the master's name; `url` lends credentials and TLS. */
  readonly sentinels?: readonly string[];
  readonly sentinelName?: string;
  /** Password of the Sentinels themselves, when they have one. */
  readonly sentinelPassword?: string;
  /** Overrides the URL's user and password (so a secret can come from its own variable). */
  readonly username?: string;
  readonly password?: string;
  /**
   * TLS to Redis: `true`, or Node TLS options (`ca` of a private CA, `servername`). Unset or
   * `false`: as the URL says (`rediss://` is TLS).
   */
  readonly tls?: boolean | ConnectionOptions;
  /** Longest wait for a connection (default 2000 ms). */
  readonly connectTimeoutMs?: number;
  /**
   * ioredis auto-pipelining (default off): batches sent in one event-loop turn share one socket
   * write, but only one such write is in flight per connection, so under load a Check's script
   * waits for the previous batch's reply. docs/state.md has what it costs and buys.
   */
  readonly autoPipelining?: boolean;
}

/** The few logger methods the Redis store uses (pino's Logger fits). */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A configured, not yet connected ioredis client. */
export interface RedisConnection {
  readonly client: Redis | Cluster;
  readonly clustered: boolean;
  /** Connects; resolves once ready, rejects with RISKGATE_STORE_UNAVAILABLE if it cannot. */
  connect(): Promise<void>;
}

const retry = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/**
 * The ioredis client the options describe. Commands fail fast while disconnected (no offline
 * queue, no retries): the guarded store's failure mode decides, and ioredis reconnects in the
 * background. Connection lost and back are logged once per transition, never per attempt.
 */
export function createRedisConnection(
  options: RedisConnectionOptions,
  logger?: StoreLogger,
): RedisConnection {
  const client = redisClient(options);
  logTransitions(client, logger);
  return {
    client,
    clustered: client instanceof Cluster,
    async connect() {
      if (client.status === "ready") return;
      try {
        await client.connect();
      } catch (err) {
        throw new RiskgateError(
          "RISKGATE_STORE_UNAVAILABLE",
          `redis: ${(err as Error).message}`,
          {},
          { cause: err },
        );
      }
    },
  };
}

/** The client of the deployment the options name: a Cluster, a Sentinel group or one server. */
function redisClient(options: RedisConnectionOptions): Redis | Cluster {
  const { connection, tls } = connectionOptions(options);
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      // when on: one pipeline per node (slots of one node may mix), concurrent Checks share writes
      enableAutoPipelining: options.autoPipelining ?? false,
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: retry,
      slotsRefreshTimeout: options.connectTimeoutMs ?? 2000,
      redisOptions: connection,
      // with TLS, connect by the announced host names so certificates match them
      ...(tls === undefined ? {} : { dnsLookup: (address, done) => done(null, address) }),
    };
    return new Cluster(options.clusterNodes.map(hostPort), clusterOptions);
  }
  if (options.sentinels && options.sentinels.length > 0) {
    return new Redis({
      ...connection,
      sentinels: options.sentinels.map(hostPort),
      name: options.sentinelName ?? "mymaster",
      sentinelRetryStrategy: retry,
      ...(options.sentinelPassword ? { sentinelPassword: options.sentinelPassword } : {}),
      ...(tls === undefined ? {} : { enableTLSForSentinelMode: true }),
    });
  }
  const url = options.url ? new URL(options.url) : undefined;
  return new Redis({
    ...connection,
    host: url?.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: url?.port ? Number(url.port) : 6379,
  });
}

/**
 * Each node's connection options (fail fast: no offline queue, no retries per command), with
 * the credentials, database and TLS of the URL unless the options override them.
 */
function connectionOptions(options: RedisConnectionOptions): {
  connection: RedisOptions;
  tls: ConnectionOptions | undefined;
} {
  const fromUrl = options.url ? parseUrl(options.url) : {};
  const tls =
    options.tls === undefined || options.tls === false
      ? fromUrl.tls
      : options.tls === true
        ? (fromUrl.tls ?? {})
        : options.tls;
  const connection: RedisOptions = {
    enableAutoPipelining: options.autoPipelining ?? false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: retry,
    lazyConnect: true,
    ...(fromUrl.db === undefined ? {} : { db: fromUrl.db }),
    ...((options.username ?? fromUrl.username)
      ? { username: options.username ?? fromUrl.username }
      : {}),
    ...((options.password ?? fromUrl.password)
      ? { password: options.password ?? fromUrl.password }
      : {}),
    ...(tls === undefined ? {} : { tls }),
  };
  return { connection, tls };
}

/**
 * Errors reach callers through their calls; the log says "lost" and "back" once each, not
 * once per reconnection attempt. The listener also keeps ioredis from printing them.
 */
function logTransitions(client: Redis | Cluster, logger: StoreLogger | undefined): void {
  let up = false;
  client.on("ready", () => {
    if (!up) logger?.info({}, "redis store: connected");
    up = true;
  });
  client.on("error", (err: Error) => {
    if (up) logger?.warn({ err: { message: err.message } }, "redis store: connection lost");
    up = false;
  });
  client.on("close", () => {
    if (up) logger?.warn({}, "redis store: connection closed");
    up = false;
  });
}

function hostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text.trim());
  if (m === null) throw new TypeError(`expected host:port, got "${text}"`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/** Credentials, database and TLS from a redis:// or rediss:// URL. */
function parseUrl(url: string): {
  username?: string;
  password?: string;
  tls?: ConnectionOptions;
  db?: number;
} {
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`expected a redis:// or rediss:// URL, got ${u.protocol}//`);
  }
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    // servername defaults to each node's own host name (cluster nodes are not the URL's host)
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
  };
}
