import type { Cluster, Redis } from "ioredis";
import { type Arg, decode, encodeOps } from "./redis-codec.js";
import {
  createRedisConnection,
  type RedisConnectionOptions,
  type StoreLogger,
} from "./redis-connection.js";
import { checkEviction } from "./redis-eviction.js";
import { STORE_SCRIPT } from "./redis-script.js";
import {
  assertValidOps,
  type OpResult,
  type Store,
  type StoreBatch,
  type StoreOp,
  type StoreResult,
} from "./store.js";
import { createWriteBehind, type WriteBehind } from "./write-behind.js";

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

type Runner = (...args: Arg[]) => Promise<unknown[]>;
/** Sends the script with these keys and arguments; resolves with its flat reply. */
type Send = (keys: string[], args: Arg[]) => Promise<unknown[]>;
/** Runs ops as script(s); resolves with one result per op. */
type Run = (ops: readonly StoreOp[]) => Promise<OpResult<StoreOp>[]>;

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
 * redis-connection.ts's job, the script's wire form redis-codec.ts's; this file sends the
 * scripts and carries the held background writes.
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

  const send = scriptSender(client, clustered);
  const runGroup = (ops: readonly StoreOp[]) => runScript(send, prefix, ops);
  // The writes after each verdict ride on the next deciding script (see write-behind.ts).
  const run: Run = clustered ? (ops) => runPerTag(runGroup, ops) : runGroup;
  const writes = createWriteBehind(run, {
    carryOps: CARRY_OPS,
    sendOps: SEND_OPS,
    maxOps: MAX_HELD_OPS,
    idleMs: options.writeDelayMs ?? WRITE_DELAY_MS,
  });

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
      const results = batch.background
        ? await writes.add(batch.ops)
        : await decide(run, writes, batch.ops);
      return { results: results as StoreResult<T>["results"] };
    },
    async close() {
      await writes.flush().catch(() => undefined);
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/**
 * The script as ioredis commands (same script, same SHA), and a function that sends it. Single
 * server: one command taking (numKeys, ...keys, ...args). Cluster: one command per key count,
 * 1..MAX_GROUP, so a call's first argument is its first key: cluster auto-pipelining routes by
 * the first argument and, given the number, would pick the wrong node and refuse the pipeline
 * ("same slots allocation group", redis/ioredis#2109). All are defined here, before any call: a
 * command defined while an auto-pipeline is pending is missing from that pipeline.
 */
function scriptSender(client: Redis | Cluster, clustered: boolean): Send {
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
  const cork = socketCorker(client);
  return (keys, args) => {
    const cmd = clustered ? runners[keys.length] : runners[0];
    if (cmd === undefined) throw new RangeError(`no script command for ${keys.length} keys`);
    if (clustered) return cmd.call(client, ...keys, ...args);
    cork();
    return cmd.call(client, keys.length, ...keys, ...args);
  };
}

/**
 * Corks the single server's socket until the tick ends: the scripts of one tick (many Checks
 * answered by one reply start their next ones together) leave in one socket write instead of
 * one each. Unlike auto-pipelining, nothing waits for a reply: the socket is uncorked as soon as
 * the tick's synchronous work and microtasks end.
 */
function socketCorker(client: Redis | Cluster): () => void {
  let corked = false;
  return () => {
    const stream = (client as Redis).stream as Redis["stream"] | undefined;
    if (corked || stream === undefined || !stream.writable) return;
    corked = true;
    stream.cork();
    process.nextTick(() => {
      corked = false;
      stream.uncork();
    });
  };
}

/** Runs a group of ops as one script and reads its reply. */
async function runScript(
  send: Send,
  prefix: string,
  ops: readonly StoreOp[],
): Promise<OpResult<StoreOp>[]> {
  const { keys, args } = encodeOps(prefix, ops);
  const flat = await send(keys, args);
  return decode(ops, flat);
}

/**
 * A script may only touch one slot: one script per hash tag (chunks of MAX_GROUP ops past
 * that), all sent at once.
 */
async function runPerTag(runGroup: Run, ops: readonly StoreOp[]): Promise<OpResult<StoreOp>[]> {
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

/** Runs a deciding batch, carrying the oldest held background writes in front of it. */
async function decide(
  run: Run,
  writes: WriteBehind,
  ops: readonly StoreOp[],
): Promise<OpResult<StoreOp>[]> {
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
