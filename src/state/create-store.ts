import type { Settings } from "../config/settings.js";
import type { Logger } from "../telemetry/logger.js";
import { type BreakerState, createGuardedStore } from "./guarded-store.js";
import { createMemoryStore } from "./memory-store.js";
import { createRedisStore } from "./redis-store.js";
import type { Store } from "./store.js";

const list = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

/**
 * The store the settings ask for: Redis (single, Cluster or Sentinel) behind a timeout and a
 * circuit breaker when configured, else the embedded memory store.
 */
export async function createStoreFromSettings(
  settings: Settings,
  logger: Logger,
  hooks: { onStateChange?(state: BreakerState): void; onCall?(ms: number, ok: boolean): void } = {},
): Promise<Store> {
  const cluster = list(settings.redisClusterNodes);
  const sentinels = list(settings.redisSentinels);
  if (settings.redisUrl === "" && cluster.length === 0 && sentinels.length === 0) {
    logger.info("state: embedded in-memory store (single process)");
    return createMemoryStore();
  }
  const redis = createRedisStore({
    ...(settings.redisUrl === "" ? {} : { url: settings.redisUrl }),
    ...(cluster.length > 0 ? { clusterNodes: cluster } : {}),
    ...(sentinels.length > 0 ? { sentinels, sentinelName: settings.redisSentinelName } : {}),
    keyPrefix: settings.redisKeyPrefix,
  });
  // start even when Redis is down: the failure mode covers it and ioredis keeps reconnecting
  await redis.ready().catch((err: unknown) => {
    logger.error({ err }, "redis unreachable at start; the failure mode applies until it answers");
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
      onStateChange: (state) => {
        logger.warn({ state }, "store circuit breaker");
        hooks.onStateChange?.(state);
      },
      ...(hooks.onCall ? { onCall: hooks.onCall } : {}),
    },
  );
}
