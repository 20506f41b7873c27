import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { createRedisStore, type StoreLogger } from "../../src/state/redis-store.js";
import { type RedisProcess, redisAvailable, startRedis } from "../helpers/redis-server.js";

const available = redisAvailable();
const op = { op: "window", key: { tag: "s:x", name: "vel" }, windowMs: 60_000, cost: 1 } as const;

interface Line {
  readonly level: "info" | "warn";
  readonly obj: object;
  readonly msg: string;
}

function recordingLogger(): StoreLogger & { lines: Line[] } {
  const lines: Line[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: "info", obj, msg }),
    warn: (obj, msg) => lines.push({ level: "warn", obj, msg }),
  };
}

describe.runIf(available)("Redis eviction policy, checked at start", () => {
  let server: RedisProcess | undefined;
  afterEach(async () => {
    await server?.dispose();
    server = undefined;
  });

  /** Connects a store to a fresh redis-server started with these arguments; its log lines. */
  async function start(
    args: string[],
    urlOf: (s: RedisProcess) => Promise<string> = async (s) => s.url,
  ): Promise<Line[]> {
    server = await startRedis({ extraArgs: args });
    const logger = recordingLogger();
    const url = await urlOf(server);
    const store = createRedisStore({ url, keyPrefix: "rgtest:" }, { logger });
    try {
      await store.ready();
      // the check never stands in the way of the store itself
      await expect(store.exec({ ops: [op], now: Date.now() })).resolves.toMatchObject({
        results: [{ count: 1 }],
      });
    } finally {
      await store.close();
    }
    return logger.lines;
  }

  for (const policy of ["allkeys-lru", "volatile-ttl", "allkeys-random", "volatile-lfu"]) {
    it(`warns when Redis would evict riskgate's keys (${policy})`, async () => {
      const lines = await start(["--maxmemory", "64mb", "--maxmemory-policy", policy]);
      const warning = lines.find((l) => l.level === "warn");
      expect(warning?.msg).toContain(`maxmemory-policy ${policy}`);
      expect(warning?.msg).toContain("noeviction");
      expect(warning?.obj).toMatchObject({ maxmemory_policy: policy, maxmemory: 64 * 1024 * 1024 });
    });
  }

  it("is quiet with noeviction, and when no maxmemory is set (Redis then evicts nothing)", async () => {
    const noeviction = await start(["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"]);
    expect(noeviction.filter((l) => l.msg.includes("maxmemory"))).toEqual([]);
    await server?.dispose();
    const unlimited = await start(["--maxmemory", "0", "--maxmemory-policy", "allkeys-lru"]);
    expect(unlimited.filter((l) => l.msg.includes("maxmemory"))).toEqual([]);
  });

  it("tolerates a managed Redis that forbids CONFIG, and says what to check", async () => {
    const lines = await start(
      ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
      async (s) => {
        // what managed Redis does: the application's user may run scripts, not CONFIG
        const admin = new Redis(s.url);
        await admin.call("ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-config");
        admin.disconnect();
        return s.url.replace("redis://", "redis://limited:pw@");
      },
    );
    expect(lines.filter((l) => l.level === "warn")).toEqual([]);
    const info = lines.find((l) => l.msg.includes("cannot read maxmemory-policy"));
    expect(info?.msg).toContain("noeviction");
    expect(info?.obj).toMatchObject({ reason: expect.stringMatching(/NOPERM|permission/i) });
  });
});
