import { afterEach, describe, expect, it } from "vitest";
import { afterPendingIo } from "../../src/deadline.js";
import { block, echoPair } from "../helpers/socket-reply.js";

let closeEcho: (() => Promise<void>) | undefined;
afterEach(async () => {
  await closeEcho?.();
  closeEcho = undefined;
});

/** Races a loopback reply against a deadline while the event loop is blocked past it. */
async function race(deadline: (ms: number, fn: () => void) => void): Promise<string> {
  const echo = await echoPair();
  closeEcho = echo.close;
  const reply = echo.ask().then(() => "reply");
  const late = new Promise<string>((resolve) => deadline(10, () => resolve("deadline")));
  block(40); // the echo arrives meanwhile; the deadline falls due
  return Promise.race([reply, late]);
}

describe("afterPendingIo", () => {
  it("lets a reply that arrived before the deadline win after a busy event loop", async () => {
    expect(await race((ms, fn) => afterPendingIo(ms, fn))).toBe("reply");
  });

  it("where a plain timer would have called the call late", async () => {
    // the behaviour afterPendingIo exists for: timers run before Node reads the socket
    expect(await race((ms, fn) => setTimeout(fn, ms))).toBe("deadline");
  });

  it("still fires when nothing arrives, and can be cancelled", async () => {
    const fired: string[] = [];
    afterPendingIo(5, () => fired.push("a"));
    const cancel = afterPendingIo(5, () => fired.push("b"));
    cancel();
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toEqual(["a"]);
  });
});
