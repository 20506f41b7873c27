import type { ConnectionOptions } from "node:tls";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { RiskgateError } from "../errors.js";
import { STORE_SCRIPT } from "./redis-script.js";
import {
  assertValidOps,
  keyText,
  type OpResult,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
} from "./store.js";

export interface RedisStoreOptions {
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
  /** Prefix of every key (`rg:`); must not contain `{` or `}`. */
  readonly keyPrefix: string;
  /** Longest wait for a connection (default 2000 ms). */
  readonly connectTimeoutMs?: number;
  /**
   * ioredis auto-pipelining (default off): batches sent in one event-loop turn share one socket
   * write, but only one such write is in flight per connection, so under load a Check's script
   * waits for the previous batch's reply. docs/state.md has what it costs and buys.
   */
  readonly autoPipelining?: boolean;
}

/** The few logger methods the store uses (pino's Logger fits). */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RedisStoreDeps {
  /** Connection lost / back (once per transition, never per failed call). */
  readonly logger?: StoreLogger;
}

export type RedisStore = Store & {
  readonly kind: "redis";
  /** Connects; resolves once ready, rejects with RISKGATE_STORE_UNAVAILABLE if it cannot. */
  ready(): Promise<void>;
  /** The ioredis client (tests and admin use). */
  readonly client: Redis | Cluster;
};

type Runner = (...args: (string | number)[]) => Promise<unknown[]>;

/** Most ops of one tag in one script on a Cluster; a larger group is sent in chunks. */
const MAX_GROUP = 16;

const retry = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/**
 * The Redis store, shared by all replicas. All ops of a batch run in one Lua script (EVALSHA;
 * ioredis sends EVAL the first time on each connection and after a NOSCRIPT), written to the
 * socket as the Check makes it (many in flight on one connection). Keys of one tag share a hash
 * tag; on Redis Cluster the batch goes out as one script per tag, all at once (one network
 * round trip, in parallel). Commands fail fast while disconnected (no offline queue, no retries): the
 * guarded store's failure mode decides, and ioredis reconnects in the background.
 */
export function createRedisStore(
  options: RedisStoreOptions,
  deps: RedisStoreDeps = {},
): RedisStore {
  const prefix = options.keyPrefix;
  if (/[{}]/.test(prefix)) throw new TypeError(`keyPrefix must not contain { or }: "${prefix}"`);
  const fromUrl = options.url ? parseUrl(options.url) : {};
  const tls =
    options.tls === undefined || options.tls === false
      ? fromUrl.tls
      : options.tls === true
        ? (fromUrl.tls ?? {})
        : options.tls;
  const autoPipelining = options.autoPipelining ?? false;
  const connection: RedisOptions = {
    enableAutoPipelining: autoPipelining,
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

  let client: Redis | Cluster;
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      // when on: one pipeline per node (slots of one node may mix), concurrent Checks share writes
      enableAutoPipelining: autoPipelining,
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: retry,
      slotsRefreshTimeout: options.connectTimeoutMs ?? 2000,
      redisOptions: connection,
      // with TLS, connect by the announced host names so certificates match them
      ...(tls === undefined ? {} : { dnsLookup: (address, done) => done(null, address) }),
    };
    client = new Cluster(options.clusterNodes.map(hostPort), clusterOptions);
  } else if (options.sentinels && options.sentinels.length > 0) {
    client = new Redis({
      ...connection,
      sentinels: options.sentinels.map(hostPort),
      name: options.sentinelName ?? "mymaster",
      sentinelRetryStrategy: retry,
      ...(options.sentinelPassword ? { sentinelPassword: options.sentinelPassword } : {}),
      ...(tls === undefined ? {} : { enableTLSForSentinelMode: true }),
    });
  } else {
    const url = options.url ? new URL(options.url) : undefined;
    client = new Redis({
      ...connection,
      host: url?.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
      port: url?.port ? Number(url.port) : 6379,
    });
  }
  const clustered = client instanceof Cluster;

  // The script as ioredis commands (same script, same SHA). Single server: one command taking
  // (numKeys, ...keys, ...args). Cluster: one command per key count, 1..MAX_GROUP, so a call's
  // first argument is its first key: cluster auto-pipelining routes by the first argument and,
  // given the number, would pick the wrong node and refuse the pipeline ("same slots allocation
  // group", redis/ioredis#2109). All are defined here, before any call: a command defined while
  // an auto-pipeline is pending is missing from that pipeline.
  const runners: Runner[] = [];
  if (clustered) {
    for (let n = 1; n <= MAX_GROUP; n++) {
      client.defineCommand(`riskgateBatch${n}`, { lua: STORE_SCRIPT, numberOfKeys: n });
      runners[n] = (client as unknown as Record<string, Runner>)[`riskgateBatch${n}`] as Runner;
    }
  } else {
    client.defineCommand("riskgateBatch", { lua: STORE_SCRIPT });
    const batch = (client as unknown as Record<string, Runner>).riskgateBatch as Runner;
    runners[0] = batch;
  }
  const send = (keys: string[], args: (string | number)[]): Promise<unknown[]> => {
    const cmd = clustered ? runners[keys.length] : runners[0];
    if (cmd === undefined) throw new RangeError(`no script command for ${keys.length} keys`);
    return clustered
      ? cmd.call(client, ...keys, ...args)
      : cmd.call(client, keys.length, ...keys, ...args);
  };

  // Errors reach callers through their calls; the log says "lost" and "back" once each, not
  // once per reconnection attempt. The listener also keeps ioredis from printing them.
  let up = false;
  client.on("ready", () => {
    if (!up) deps.logger?.info({}, "redis store: connected");
    up = true;
  });
  client.on("error", (err: Error) => {
    if (up) deps.logger?.warn({ err: { message: err.message } }, "redis store: connection lost");
    up = false;
  });
  client.on("close", () => {
    if (up) deps.logger?.warn({}, "redis store: connection closed");
    up = false;
  });

  async function runGroup(ops: readonly StoreOp[]): Promise<OpResult<StoreOp>[]> {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const op of ops) {
      keys.push(keyText(prefix, op.key));
      switch (op.op) {
        case "window":
          args.push("w", op.windowMs, op.cost);
          break;
        case "count":
          args.push("c", op.cost, op.ttlMs);
          break;
        case "distinct":
          args.push("d", op.member, op.windowMs);
          break;
        case "swap":
          args.push("s", op.value, op.ttlMs);
          break;
        case "get":
          args.push("g");
          break;
        case "member":
          args.push("m", op.member, op.ttlMs, op.max);
          break;
        case "has":
          args.push("h", op.member);
          break;
        case "baseline":
          args.push("b", op.bucketMs, op.alpha, op.ttlMs);
          break;
      }
    }
    const flat = await send(keys, args);
    return decode(ops, flat);
  }

  async function runPerTag(ops: readonly StoreOp[]): Promise<OpResult<StoreOp>[]> {
    // a script may only touch one slot: one script per hash tag (chunks of MAX_GROUP ops past
    // that), all sent at once
    const groups = new Map<string, number[]>();
    const chunks: number[][] = [];
    ops.forEach((op, i) => {
      let g = groups.get(op.key.tag);
      if (g === undefined || g.length === MAX_GROUP) {
        g = [];
        groups.set(op.key.tag, g);
        chunks.push(g);
      }
      g.push(i);
    });
    if (chunks.length === 1) return runGroup(ops);
    const results: OpResult<StoreOp>[] = new Array(ops.length);
    await Promise.all(
      chunks.map(async (indexes) => {
        const out = await runGroup(indexes.map((i) => ops[i] as StoreOp));
        indexes.forEach((i, j) => {
          results[i] = out[j] as OpResult<StoreOp>;
        });
      }),
    );
    return results;
  }

  return {
    kind: "redis",
    client,
    async ready() {
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
    async exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      assertValidOps(batch.ops);
      if (batch.ops.length === 0) return { results: [] as unknown as StoreResult<T>["results"] };
      const results = clustered ? await runPerTag(batch.ops) : await runGroup(batch.ops);
      return { results: results as StoreResult<T>["results"] };
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** Reads the script's flat reply back into one result per op. */
function decode(ops: readonly StoreOp[], flat: unknown[]): OpResult<StoreOp>[] {
  let i = 0;
  const num = () => Number(flat[i++]);
  const str = () => String(flat[i++]);
  return ops.map((op): OpResult<StoreOp> => {
    switch (op.op) {
      case "window":
        return { count: num(), resetMs: num() };
      case "count":
      case "distinct":
        return { count: num() };
      case "swap":
      case "get": {
        const has = num() === 1;
        const value = str();
        return { previous: has ? value : null };
      }
      case "member":
      case "has":
        return { isNew: num() === 1, size: num() };
      case "baseline":
        return { current: num(), mean: num(), variance: num(), samples: num() };
      default:
        throw new TypeError(`unknown store op ${(op as { op: string }).op}`);
    }
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
