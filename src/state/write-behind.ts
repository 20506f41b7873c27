import type { OpResult, StoreOp } from "./store.js";

type Results = readonly OpResult<StoreOp>[];

/** Queued background batches taken to ride on a script that goes out now. */
export interface CarriedWrites {
  readonly ops: readonly StoreOp[];
  /** Hands each queued batch its share of `results` (aligned with `ops`). */
  settle(results: Results): void;
  /** The script that carried them failed: every queued batch rejects with `err`. */
  fail(err: unknown): void;
}

export interface WriteBehind {
  /** Queues a background batch; resolves with its results once some script has run it. */
  add(ops: readonly StoreOp[]): Promise<Results>;
  /**
   * Takes the oldest queued batches for a deciding script to carry (at most `carryOps` ops, or
   * one larger batch), if any.
   */
  take(): CarriedWrites | undefined;
  /** Sends everything queued now, and resolves once all of it has been answered. */
  flush(): Promise<void>;
}

export interface WriteBehindOptions {
  /**
   * Most ops one deciding script carries. Small, so that a burst of verdicts (many Checks
   * answered by one reply) spreads over the deciding scripts that follow instead of making one
   * of them long.
   */
  readonly carryOps: number;
  /** Most ops in one script when held writes go alone. */
  readonly sendOps: number;
  /** Most ops held; past it they are sent alone at once. */
  readonly maxOps: number;
  /** How long queued writes wait for a deciding script to carry them before going alone. */
  readonly idleMs: number;
}

interface Entry {
  readonly ops: readonly StoreOp[];
  readonly resolve: (results: Results) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The writes after each verdict, held back briefly so that the next deciding script of the same
 * connection carries them: one round trip per Check instead of two. Carried ops go first in that
 * script, so this process's next read sees them, as it did when they went alone; other replicas
 * see them at most `idleMs` later. When no deciding script comes within `idleMs`, or the queue
 * is full, they go alone; `flush` sends the rest on shutdown, so nothing accepted is lost.
 */
export function createWriteBehind(
  run: (ops: readonly StoreOp[]) => Promise<Results>,
  options: WriteBehindOptions,
): WriteBehind {
  let queue: Entry[] = [];
  let queuedOps = 0;
  let timer: NodeJS.Timeout | undefined;
  let full = false;
  const sent = new Set<Promise<unknown>>();

  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const take = (most: number): CarriedWrites | undefined => {
    if (queue.length === 0) return undefined;
    let count = 0;
    let size = 0;
    while (count < queue.length) {
      const n = (queue[count] as Entry).ops.length;
      if (count > 0 && size + n > most) break;
      size += n;
      count++;
    }
    const entries = count === queue.length ? queue : queue.slice(0, count);
    queue = count === queue.length ? [] : queue.slice(count);
    queuedOps -= size;
    if (queue.length === 0) disarm();
    return carried(entries);
  };

  const sendAll = () => {
    full = false;
    disarm();
    for (let c = take(options.sendOps); c !== undefined; c = take(options.sendOps)) {
      const writes = c;
      const done: Promise<unknown> = run(writes.ops).then(writes.settle, writes.fail);
      sent.add(done);
      void done.finally(() => sent.delete(done));
    }
  };

  return {
    add(ops) {
      return new Promise<Results>((resolve, reject) => {
        queue.push({ ops, resolve, reject });
        queuedOps += ops.length;
        if (queuedOps < options.maxOps) timer ??= setTimeout(sendAll, options.idleMs);
        else if (!full) {
          full = true;
          setImmediate(sendAll);
        }
      });
    },
    take: () => take(options.carryOps),
    async flush() {
      sendAll();
      await Promise.all([...sent]);
    },
  };
}

function carried(entries: readonly Entry[]): CarriedWrites {
  const ops: StoreOp[] = [];
  for (const e of entries) for (const op of e.ops) ops.push(op);
  return {
    ops,
    settle(results) {
      let at = 0;
      for (const e of entries) {
        e.resolve(results.slice(at, at + e.ops.length));
        at += e.ops.length;
      }
    },
    fail(err) {
      for (const e of entries) e.reject(err);
    },
  };
}
