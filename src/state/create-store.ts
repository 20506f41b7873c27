import { readFile } from "node:fs/promises";
import type { Settings } from "../config/settings.js";
import { RiskgateError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import { createGuardedStore, type GuardHooks } from "./guarded-store.js";
import { createMemoryStore } from "./memory-store.js";
import { createRedisStore } from "./redis-store.js";
import type { Store } from "./store.js";

const list = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

/**
 * The settings the store reads. The optional ones (RISKGATE_REDIS_PASSWORD,
 * RISKGATE_REDIS_TLS_CA_FILE, RISKGATE_REDIS_SENTINEL_PASSWORD,
 * RISKGATE_REDIS_AUTO_PIPELINING) are used when present.
 */
export type StoreSettings = Pick<
  Settings,
  | "redisUrl"
  | "redisClusterNodes"
  | "redisSentinels"
  | "redisSentinelName"
  | "redisKeyPrefix"
  | "storeTimeoutMs"
  | "storeBreakerFailures"
  | "storeBreakerResetMs"
> & {
  readonly redisPassword?: string;
  readonly redisTlsCaFile?: string;
  readonly redisSentinelPassword?: string;
  readonly redisAutoPipelining?: boolean;
};

async function readCa(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new RiskgateError(
      "RISKGATE_SETTING_INVALID",
      `RISKGATE_REDIS_TLS_CA_FILE: cannot read ${file}: ${(err as Error).message}`,
      { setting: "RISKGATE_REDIS_TLS_CA_FILE" },
      { cause: err },
    );
  }
}

/**
 * The store the settings ask for: Redis (single, Cluster or Sentinel) behind a timeout and a
 * circuit breaker when configured, else the embedded memory store. Redis down at start is not
 * fatal: the failure mode covers it and ioredis keeps reconnecting.
 */
export async function createStoreFromSettings(
  settings: StoreSettings,
  logger: Logger,
  hooks: GuardHooks = {},
): Promise<Store> {
  const cluster = list(settings.redisClusterNodes);
  const sentinels = list(settings.redisSentinels);
  if (settings.redisUrl === "" && cluster.length === 0 && sentinels.length === 0) {
    logger.info("state: embedded in-memory store (single process)");
    return createMemoryStore();
  }
  const redis = createRedisStore(
    {
      ...(settings.redisUrl === "" ? {} : { url: settings.redisUrl }),
      ...(cluster.length > 0 ? { clusterNodes: cluster } : {}),
      ...(sentinels.length > 0 ? { sentinels, sentinelName: settings.redisSentinelName } : {}),
      ...(settings.redisPassword ? { password: settings.redisPassword } : {}),
      ...(settings.redisSentinelPassword
        ? { sentinelPassword: settings.redisSentinelPassword }
        : {}),
      ...(settings.redisTlsCaFile ? { tls: { ca: await readCa(settings.redisTlsCaFile) } } : {}),
      ...(settings.redisAutoPipelining === undefined
        ? {}
        : { autoPipelining: settings.redisAutoPipelining }),
      keyPrefix: settings.redisKeyPrefix,
      // held writes must reach Redis well inside the guard's timeout, which counts from the call
      writeDelayMs: Math.max(1, Math.min(20, Math.floor(settings.storeTimeoutMs / 4))),
    },
    { logger },
  );
  await redis.ready().catch((err: unknown) => {
    logger.error(
      { err: { message: (err as Error).message } },
      "redis unreachable at start; the failure mode applies until it answers",
    );
  });
  logger.info(
    { mode: cluster.length > 0 ? "cluster" : sentinels.length > 0 ? "sentinel" : "single" },
    "state: redis store",
  );
  return createGuardedStore(
    redis,
    {
      timeoutMs: settings.storeTimeoutMs,
      failureThreshold: settings.storeBreakerFailures,
      resetAfterMs: settings.storeBreakerResetMs,
    },
    {
      ...hooks,
      onStateChange: (state) => {
        if (state === "open") logger.warn({ state }, "store circuit breaker opened");
        else logger.info({ state }, "store circuit breaker");
        hooks.onStateChange?.(state);
      },
    },
  );
}
