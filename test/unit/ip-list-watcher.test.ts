import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RiskgateError } from "../../src/errors.js";
import { createIpListWatcher, type IpList, type LineError } from "../../src/geo/ip-list.js";

/**
 * Drives a real watcher on a temp directory. Waiting is on events (the next load or error),
 * never on a timer; the waits are bounded so that a missed event fails with a clear message.
 */
function harness(file: string) {
  const loads: { list: IpList; errors: readonly LineError[] }[] = [];
  const errors: unknown[] = [];
  const waiters: (() => void)[] = [];
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  const watcher = createIpListWatcher(
    {
      onLoad: (list, lineErrors) => {
        loads.push({ list, errors: lineErrors });
        notify();
      },
      onError: (err) => {
        errors.push(err);
        notify();
      },
    },
    { file, debounceMs: 20 },
  );
  /** Resolves once `done()` holds, re-checked on every load or error; fails after 5 s. */
  const until = (what: string, done: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000);
      const check = () => {
        if (done()) {
          clearTimeout(timeout);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { watcher, loads, errors, until };
}

let dir: string;
let file: string;
let h: ReturnType<typeof harness> | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "riskgate-iplist-"));
  file = join(dir, "block.netset");
});

afterEach(() => {
  h?.watcher.close();
  h = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("createIpListWatcher", () => {
  it("loads the file on creation", async () => {
    writeFileSync(file, "# block\n203.0.113.0/24\nbad line here\n");
    h = harness(file);
    expect(h.watcher.current().size).toBe(0); // before the first load settles
    await h.watcher.ready();
    expect(h.loads).toHaveLength(1);
    expect(h.watcher.current().has("203.0.113.9")).toBe(true);
    expect(h.watcher.current().source).toBe(file);
    // Skipped lines reach onLoad so the caller can log them.
    expect(h.loads[0]?.errors).toEqual([{ line: 3, message: 'unexpected text after "bad"' }]);
  });

  it("parses a long file in slices with the same result and line numbers", async () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    lines[8999] = "not an address";
    writeFileSync(file, `${lines.join("\n")}\n`);
    h = harness(file);
    await h.watcher.ready();
    expect(h.loads[0]?.errors).toEqual([{ line: 9000, message: 'unexpected text after "not"' }]);
    expect(h.watcher.current().size).toBe(9_999);
    expect(h.watcher.current().match("10.39.15.7")).toBe("10.39.15.0/24");
  });

  it("reloads when the file is written in place", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    writeFileSync(file, "198.51.100.0/24\n2001:db8::/32\n");
    await w.until("the rewritten list", () => w.watcher.current().has("198.51.100.1"));
    expect(w.watcher.current().has("203.0.113.9")).toBe(false);
    expect(w.watcher.current().has("2001:db8::5")).toBe(true);
    expect(w.errors).toEqual([]);
  });

  it("reloads when a new file is renamed over the old one", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    const tmp = join(dir, ".block.netset.tmp");
    writeFileSync(tmp, "192.0.2.0/24\n");
    renameSync(tmp, file);
    await w.until("the renamed list", () => w.watcher.current().has("192.0.2.1"));
    expect(w.watcher.current().has("203.0.113.9")).toBe(false);
    // The watch survives the inode change: a second publish is seen too.
    writeFileSync(tmp, "198.18.0.0/15\n");
    renameSync(tmp, file);
    await w.until("the second renamed list", () => w.watcher.current().has("198.19.0.1"));
  });

  it("keeps the last good list when the new file is junk, and reports it", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    const good = w.watcher.current();
    writeFileSync(file, "<html>\n<body>502 Bad Gateway</body>\n</html>\n");
    await w.until("the rejection", () => w.errors.length > 0);
    expect(w.watcher.current()).toBe(good);
    expect(w.errors[0]).toBeInstanceOf(RiskgateError);
    expect((w.errors[0] as Error).message).toMatch(
      /3 bad lines and 0 good; keeping the previous list/,
    );
    // A good file afterwards loads again.
    writeFileSync(file, "192.0.2.0/24\n");
    await w.until("the repaired list", () => w.watcher.current().has("192.0.2.1"));
  });

  it("keeps the last good list when the file is emptied; a comment line publishes an empty list", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    writeFileSync(file, "");
    await w.watcher.reload();
    expect((w.errors.at(-1) as Error).message).toMatch(
      /empty \(a write in progress\?\); keeping the previous list/,
    );
    expect(w.watcher.current().has("203.0.113.9")).toBe(true);
    writeFileSync(file, "# nothing blocked today\n");
    await w.until("the emptied list", () => w.watcher.current().size === 0);
    expect(w.loads.at(-1)?.errors).toEqual([]);
  });

  it("keeps the last good list when the file disappears, and loads it when it comes back", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    rmSync(file);
    await w.watcher.reload();
    expect(w.errors.length).toBeGreaterThan(0);
    expect((w.errors.at(-1) as Error).message).toMatch(
      /cannot read \(ENOENT\); keeping the previous list/,
    );
    expect(w.watcher.current().has("203.0.113.9")).toBe(true);
    writeFileSync(file, "192.0.2.0/24\n");
    await w.until("the recreated list", () => w.watcher.current().has("192.0.2.1"));
  });

  it("starts empty when the file is missing, then loads it once it appears", async () => {
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    expect(w.errors).toHaveLength(1);
    expect(w.watcher.current().size).toBe(0);
    writeFileSync(file, "10.0.0.0/8\n");
    await w.until("the new file", () => w.watcher.current().has("10.1.1.1"));
  });

  it("reload() reads the file now, without waiting for a change event", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    h = w;
    await w.watcher.ready();
    writeFileSync(file, "192.0.2.0/24\n");
    await w.watcher.reload();
    expect(w.watcher.current().has("192.0.2.1")).toBe(true);
  });

  it("survives an onLoad hook that throws, reporting it through onError", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const errors: unknown[] = [];
    const watcher = createIpListWatcher(
      {
        onLoad: () => {
          throw new Error("hook bug");
        },
        onError: (err) => errors.push(err),
      },
      { file, debounceMs: 20 },
    );
    try {
      await watcher.ready();
      expect(watcher.current().has("203.0.113.1")).toBe(true);
      expect((errors[0] as Error).message).toBe("hook bug");
    } finally {
      watcher.close();
    }
  });

  it("stops loading once closed", async () => {
    writeFileSync(file, "203.0.113.0/24\n");
    const w = harness(file);
    await w.watcher.ready();
    w.watcher.close();
    writeFileSync(file, "192.0.2.0/24\n");
    await w.watcher.reload();
    expect(w.loads).toHaveLength(1);
    expect(w.watcher.current().has("203.0.113.9")).toBe(true);
  });
});
