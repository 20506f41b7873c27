import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createStoreFromSettings, type StoreSettings } from "../../src/state/create-store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { freePort } from "../helpers/free-port.js";

const base: StoreSettings = {
  redisUrl: "",
  redisClusterNodes: "",
  redisSentinels: "",
  redisSentinelName: "mymaster",
  redisKeyPrefix: "rg:",
  storeTimeoutMs: 50,
  storeBreakerFailures: 2,
  storeBreakerResetMs: 1000,
};

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger("info", sink), lines };
}

describe("createStoreFromSettings", () => {
  it("uses the embedded memory store when no Redis is configured", async () => {
    const { logger } = capture();
    const store = await createStoreFromSettings(base, logger);
    expect(store.kind).toBe("memory");
    await store.close();
  });

  it("starts with Redis unreachable: guarded, failing fast, the password never logged", async () => {
    const { logger, lines } = capture();
    const port = await freePort(); // nothing listens there
    const store = await createStoreFromSettings(
      { ...base, redisUrl: `redis://:hunter2@127.0.0.1:${port}`, redisPassword: "hunter3" },
      logger,
    );
    expect(store.kind).toBe("redis");
    expect("breakerState" in store).toBe(true);
    const op = { op: "window", key: { tag: "s:a", name: "vel" }, windowMs: 1000, cost: 1 } as const;
    for (let i = 0; i < 3; i++) {
      await expect(store.exec({ ops: [op], now: 0 })).rejects.toMatchObject({
        code: "RISKGATE_STORE_UNAVAILABLE",
      });
    }
    expect((store as unknown as { breakerState: string }).breakerState).toBe("open");
    await store.close();
    const text = JSON.stringify(lines);
    expect(text).toContain("redis unreachable at start");
    expect(text).not.toMatch(/hunter[23]/);
  });

  it("names the setting when the TLS CA file cannot be read", async () => {
    const { logger } = capture();
    await expect(
      createStoreFromSettings(
        { ...base, redisUrl: "rediss://127.0.0.1:1", redisTlsCaFile: "/nonexistent/ca.pem" },
        logger,
      ),
    ).rejects.toMatchObject({
      code: "RISKGATE_SETTING_INVALID",
      message: expect.stringMatching(/RISKGATE_REDIS_TLS_CA_FILE/),
    });
  });
});
