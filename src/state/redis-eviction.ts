import type { Cluster, Redis } from "ioredis";
import type { StoreLogger } from "./redis-connection.js";

/** What one Redis server said about eviction, or why it could not be asked. */
export type EvictionCheck =
  | {
      readonly node: string;
      /** False when Redis would evict riskgate's keys once memory is full. */
      readonly safe: boolean;
      readonly policy: string;
      readonly maxmemory: number;
    }
  | { readonly node: string; readonly unknown: string };

/**
 * Whether Redis may evict riskgate's keys. Every key riskgate writes has a TTL, so both the
 * `allkeys-*` and the `volatile-*` policies pick them when memory is full: a throttled caller's
 * window or a subject's known countries would vanish without a word, and the next request be
 * judged on an empty history (a flood of new keys could reset a throttle on purpose). Only
 * `noeviction` (writes then fail, and the failure mode decides, visibly) keeps them; with no
 * `maxmemory` Redis evicts nothing. Managed Redis often forbids CONFIG: then the answer is
 * unknown and the operator is told what to check. Each master of a Cluster is asked.
 */
export async function checkEviction(
  client: Redis | Cluster,
  logger?: StoreLogger,
): Promise<EvictionCheck[]> {
  const nodes: Redis[] = "nodes" in client ? client.nodes("master") : [client];
  const checks = await Promise.all(nodes.map(evictionOf));
  for (const check of checks) {
    if ("unknown" in check) {
      logger?.info(
        { node: check.node, reason: check.unknown },
        "redis store: cannot read maxmemory-policy; make sure it is noeviction (see docs/state.md)",
      );
    } else if (!check.safe) {
      logger?.warn(
        { node: check.node, maxmemory_policy: check.policy, maxmemory: check.maxmemory },
        `redis store: maxmemory-policy ${check.policy} lets Redis evict riskgate's keys when memory is full (throttles and learned history reset silently); set maxmemory-policy noeviction (see docs/state.md)`,
      );
    }
  }
  return checks;
}

async function evictionOf(node: Redis): Promise<EvictionCheck> {
  const name = `${node.options.host}:${node.options.port}`;
  try {
    const [policyReply, memoryReply] = await Promise.all([
      node.config("GET", "maxmemory-policy"),
      node.config("GET", "maxmemory"),
    ]);
    const policy = String((policyReply as string[])[1] ?? "");
    const maxmemory = Number((memoryReply as string[])[1] ?? 0);
    if (policy === "") return { node: name, unknown: "CONFIG GET answered nothing" };
    return { node: name, safe: policy === "noeviction" || maxmemory === 0, policy, maxmemory };
  } catch (err) {
    return { node: name, unknown: (err as Error).message };
  }
}
