import { describe, expect, it } from "vitest";
import type { OpResult, StoreOp } from "../../src/state/store.js";
import { createWriteBehind } from "../../src/state/write-behind.js";

const op = (name: string): StoreOp => ({
  op: "count",
  key: { tag: "t", name },
  cost: 1,
  ttlMs: 1_000,
});
/** A fake script: each op's result is its key name's length, so shares can be told apart. */
const answer = (ops: readonly StoreOp[]) =>
  ops.map((o) => ({ count: o.key.name.length }) as OpResult<StoreOp>);

describe("write-behind (the writes after a verdict, carried by the next deciding script)", () => {
  it("hands the queued batches to the next script, oldest first, each with its own results", async () => {
    const sent: StoreOp[][] = [];
    const writes = createWriteBehind(
      async (ops) => {
        sent.push([...ops]);
        return answer(ops);
      },
      { carryOps: 100, sendOps: 100, maxOps: 100, idleMs: 60_000 },
    );
    const first = writes.add([op("a"), op("bb")]);
    const second = writes.add([op("ccc")]);
    const carried = writes.take();
    expect(carried?.ops.map((o) => o.key.name)).toEqual(["a", "bb", "ccc"]);
    expect(writes.take()).toBeUndefined();
    carried?.settle(answer(carried.ops));
    expect(await first).toEqual([{ count: 1 }, { count: 2 }]);
    expect(await second).toEqual([{ count: 3 }]);
    expect(sent).toEqual([]); // carried, never sent alone
  });

  it("carries a few Checks' writes per deciding script, oldest first", () => {
    const writes = createWriteBehind(async (ops) => answer(ops), {
      carryOps: 2,
      sendOps: 100,
      maxOps: 100,
      idleMs: 60_000,
    });
    for (const name of ["a", "b", "c"]) void writes.add([op(name)]);
    void writes.add([op("d"), op("e"), op("f")]);
    const taken = () => writes.take()?.ops.map((o) => o.key.name);
    expect([taken(), taken(), taken(), taken()]).toEqual([
      ["a", "b"],
      ["c"],
      ["d", "e", "f"], // one larger batch goes whole
      undefined,
    ]);
  });

  it("bounds what one script carries, and sends a full queue at once", async () => {
    const sent: string[][] = [];
    const writes = createWriteBehind(
      async (ops) => {
        sent.push(ops.map((o) => o.key.name));
        return answer(ops);
      },
      { carryOps: 3, sendOps: 3, maxOps: 3, idleMs: 60_000 },
    );
    const pending = [writes.add([op("a"), op("b")]), writes.add([op("c"), op("d")])];
    await Promise.all(pending);
    expect(sent).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]);
  });

  it("rejects every carried batch when their script fails, and flushes the rest on close", async () => {
    const writes = createWriteBehind(async (ops) => answer(ops), {
      carryOps: 100,
      sendOps: 100,
      maxOps: 100,
      idleMs: 60_000,
    });
    const lost = writes.add([op("a")]);
    writes.take()?.fail(new Error("down"));
    await expect(lost).rejects.toThrow("down");
    const held = writes.add([op("bb")]);
    await writes.flush();
    expect(await held).toEqual([{ count: 2 }]);
  });
});
