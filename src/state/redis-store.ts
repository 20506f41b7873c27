import type { Cluster, Redis } from "ioredis";
import {
  createRedisConnection,
  type RedisConnectionOptions,
  type StoreLogger,
} from "./redis-connection.js";
import { checkEviction } from "./redis-eviction.js";
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
import { createWriteBehind } from "./write-behind.js";

export interface RedisStoreOptions extends RedisConnectionOptions {
  /** Prefix of every key (`rg:`); must not contain `{` or `}`. */
  readonly keyPrefix: string;
  /** How long background writes wait to ride on a deciding script (ms; 10). */
  readonly writeDelayMs?: number;
}

export type { StoreLogger };

export interface RedisStoreDeps {
  /** Connection lost / back (once per transition, never per failed call), eviction risk. */
  readonly logger?: StoreLogger;
}

export type RedisStore = Store & {
  readonly kind: "redis";
  /**
   * Connects; resolves once ready (after warning when Redis may evict riskgate's keys), rejects
   * with RISKGATE_STORE_UNAVAILABLE if it cannot connect.
   */
  ready(): Promise<void>;
  /** The ioredis client (tests and admin use). */
  readonly client: Redis | Cluster;
};

type Arg = string | number;
type Runner = (...args: Arg[]) => Promise<unknown[]>;

/**
 * Each op's type letter and numeric params, comma-separated (the script's ARGV[1]); its string
 * params go in `strings`, one argument each, in op order.
 */
const ENCODE: {
  readonly [K in StoreOp["op"]]: (op: Extract<StoreOp, { op: K }>, strings: string[]) => string;
} = {
  // a limited window says whether it counts in its letter, so it takes no more params
  window: (op) =>
    op.limit === undefined
      ? `w,${op.windowMs},${op.cost}`
      : `${op.cost > 0 ? "L" : "l"},${op.windowMs},${op.limit}`,
  count: (op) => `c,${op.cost},${op.ttlMs}`,
  distinct: (op, strings) => {
    strings.push(op.member);
    return `d,${op.windowMs}`;
  },
  swap: (op, strings) => {
    strings.push(op.value);
    return `s,${op.ttlMs}`;
  },
  get: () => "g",
  member: (op, strings) => {
    strings.push(op.member);
    return `m,${op.ttlMs},${op.max}`;
  },
  has: (op, strings) => {
    strings.push(op.member);
    return "h";
  },
  baseline: (op) => `b,${op.bucketMs},${op.alpha},${op.ttlMs},${op.cost}`,
};

/** Most ops of held background batches one deciding script carries (a few Checks' writes). */
const CARRY_OPS = 64;

/** Most ops of background batches sent as one script when they go alone. */
const SEND_OPS = 512;

/** Most ops of background batches held (a burst of a few hundred verdicts' writes). */
const MAX_HELD_OPS = 4096;

/**
 * How long the writes after a verdict wait for the next deciding script before going alone:
 * longer than the gap between one caller's Checks on a busy machine, short enough that other
 * replicas see them at once (create-store.ts sets it from the store timeout).
 */
const WRITE_DELAY_MS = 10;

/** Most ops of one tag in one script on a Cluster; a larger group is sent in chunks. */
const MAX_GROUP = 16;

/**
 * The Redis store, shared by all replicas. All ops of a batch run in one Lua script (EVALSHA;
 * ioredis sends EVAL the first time on each connection and after a NOSCRIPT), written to the
 * socket as the Check makes it (many in flight on one connection). Keys of one tag share a hash
 * tag; on Redis Cluster the batch goes out as one script per tag, all at once (one network
 * round trip, in parallel). How the connection is made (single, Cluster, Sentinel, TLS) is
 * redis-connection.ts's job; this file encodes store ops for the script and decodes its reply.
 */
export function createRedisStore(
  options: RedisStoreOptions,
  deps: RedisStoreDeps = {},
): RedisStore {
  const prefix = options.keyPrefix;
  if (/[{}]/.test(prefix)) throw new TypeError(`keyPrefix must not contain { or }: "${prefix}"`);
  const connection = createRedisConnection(options, deps.logger);
  const { client, clustered } = connection;
  // asked once, on the first connection (at start, or whenever Redis first answers)
  let eviction: Promise<unknown> | undefined;
  const checkEvictionOnce = () => {
    eviction ??= checkEviction(client, deps.logger);
    return eviction;
  };
  client.once("ready", () => void checkEvictionOnce());

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
  const send = (keys: string[], args: Arg[]): Promise<unknown[]> => {
    const cmd = clustered ? runners[keys.length] : runners[0];
    if (cmd === undefined) throw new RangeError(`no script command for ${keys.length} keys`);
    if (clustered) return cmd.call(client, ...keys, ...args);
    cork();
    return cmd.call(client, keys.length, ...keys, ...args);
  };
  // The scripts of one tick (many Checks answered by one reply start their next ones together)
  // leave in one socket write instead of one each. Unlike auto-pipelining, nothing waits for a
  // reply: the socket is uncorked as soon as the tick's synchronous work and microtasks end.
  let corked = false;
  const cork = () => {
    const stream = (client as Redis).stream as Redis["stream"] | undefined;
    if (corked || stream === undefined || !stream.writable) return;
    corked = true;
    stream.cork();
    process.nextTick(() => {
      corked = false;
      stream.uncork();
    });
  };

  async function runGroup(ops: readonly StoreOp[]): Promise<OpResult<StoreOp>[]> {
    const keys: string[] = new Array(ops.length);
    const strings: string[] = [];
    let spec = "";
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as StoreOp;
      keys[i] = keyText(prefix, op.key);
      const params = (ENCODE[op.op] as (op: StoreOp, strings: string[]) => string)(op, strings);
      spec = i === 0 ? params : `${spec},${params}`;
    }
    const flat = await send(keys, [spec, ...strings]);
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

  // The writes after each verdict ride on the next deciding script (see write-behind.ts).
  const run = clustered ? runPerTag : runGroup;
  const writes = createWriteBehind(run, {
    carryOps: CARRY_OPS,
    sendOps: SEND_OPS,
    maxOps: MAX_HELD_OPS,
    idleMs: options.writeDelayMs ?? WRITE_DELAY_MS,
  });
  async function decide(ops: readonly StoreOp[]): Promise<OpResult<StoreOp>[]> {
    const carried = writes.take();
    if (carried === undefined) return run(ops);
    const all = carried.ops.concat(ops);
    let results: OpResult<StoreOp>[];
    try {
      results = await run(all);
    } catch (err) {
      carried.fail(err);
      throw err;
    }
    const n = carried.ops.length;
    carried.settle(results.slice(0, n));
    return results.slice(n);
  }

  return {
    kind: "redis",
    client,
    async ready() {
      await connection.connect();
      await checkEvictionOnce();
    },
    async exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>): Promise<StoreResult<T>> {
      assertValidOps(batch.ops);
      if (batch.ops.length === 0) return { results: [] as unknown as StoreResult<T>["results"] };
      const results = batch.background ? await writes.add(batch.ops) : await decide(batch.ops);
      return { results: results as StoreResult<T>["results"] };
    },
    async close() {
      await writes.flush().catch(() => undefined);
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
