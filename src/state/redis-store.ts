import { Cluster, Redis, type RedisOptions } from "ioredis";
import { RiskgateError } from "../errors.js";
import { STORE_SCRIPT } from "./redis-script.js";
import {
  keyText,
  type OpResult,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
} from "./store.js";

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` (TLS) URL, with password if any. */
  readonly url?: string;
  /** Redis Cluster seed nodes (`host:port`); when set, `url` only lends its credentials and TLS. */
  readonly clusterNodes?: readonly string[];
  /** Sentinel nodes (`host:port`) and the master's name. */
  readonly sentinels?: readonly string[];
  readonly sentinelName?: string;
  /** Prefix of every key (default `rg:`). */
  readonly keyPrefix: string;
  readonly connectTimeoutMs?: number;
}

type Client = Redis | Cluster;
type Runner = (numKeys: number, ...args: (string | number)[]) => Promise<unknown[]>;

/**
 * The Redis store, shared by all replicas. All ops of a batch run in one Lua script (EVALSHA,
 * falling back to EVAL on NOSCRIPT) with ioredis auto-pipelining; keys of one tag share a hash
 * tag, so on Redis Cluster the batch goes out as one script per tag group, all at once.
 * Commands fail fast while disconnected (no offline queue): the guarded store's failure mode
 * decides, and ioredis reconnects in the background.
 */
export function createRedisStore(options: RedisStoreOptions): Store & {
  /** Resolves once connected (rejects after connectTimeoutMs). */
  ready(): Promise<void>;
  readonly client: Client;
} {
  const prefix = options.keyPrefix;
  const base: RedisOptions = {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: true,
  };
  const fromUrl = options.url ? parseUrl(options.url) : {};
  let client: Client;
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    client = new Cluster(options.clusterNodes.map(hostPort), {
      // ioredis refuses auto-pipelines that mix slots on one node; the per-tag scripts are sent
      // concurrently instead, which keeps the batch to one network round trip
      enableAutoPipelining: false,
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      redisOptions: { ...base, ...fromUrl },
    });
  } else if (options.sentinels && options.sentinels.length > 0) {
    client = new Redis({
      ...base,
      ...fromUrl,
      sentinels: options.sentinels.map(hostPort),
      name: options.sentinelName ?? "mymaster",
    });
  } else {
    client = options.url ? new Redis(options.url, base) : new Redis(base);
  }
  client.defineCommand("riskgateBatch", { lua: STORE_SCRIPT });
  const runner = (client as unknown as { riskgateBatch: Runner }).riskgateBatch.bind(client);
  const clustered = client instanceof Cluster;
  // errors surface through the calls; this keeps ioredis from logging unhandled error events
  client.on("error", () => {});

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
        case "member":
          args.push("m", op.member, op.ttlMs, op.max);
          break;
        case "baseline":
          args.push("b", op.bucketMs, op.alpha, op.ttlMs);
          break;
      }
    }
    const flat = await runner(keys.length, ...keys, ...args);
    return decode(ops, flat);
  }

  return {
    kind: "redis",
    client,
    async ready() {
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
      if (batch.ops.length === 0) return { results: [] as unknown as StoreResult<T>["results"] };
      if (!clustered) {
        return { results: (await runGroup(batch.ops)) as StoreResult<T>["results"] };
      }
      // Cluster: one script per hash tag (one slot each), sent together
      const groups = new Map<string, number[]>();
      batch.ops.forEach((op, i) => {
        const g = groups.get(op.key.tag);
        if (g) g.push(i);
        else groups.set(op.key.tag, [i]);
      });
      const results: OpResult<StoreOp>[] = new Array(batch.ops.length);
      await Promise.all(
        [...groups.values()].map(async (indexes) => {
          const out = await runGroup(indexes.map((i) => batch.ops[i] as StoreOp));
          indexes.forEach((i, j) => {
            results[i] = out[j] as OpResult<StoreOp>;
          });
        }),
      );
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
      case "swap": {
        const has = num() === 1;
        const value = str();
        return { previous: has ? value : null };
      }
      case "member":
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

/** Credentials and TLS from a redis:// or rediss:// URL, for cluster and sentinel nodes. */
function parseUrl(url: string): Pick<RedisOptions, "username" | "password" | "tls" | "db"> {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
  };
}
