/**
 * The Redis store path alone, without a load generator: what one Check's store calls cost the
 * client (process CPU) and Redis (scripts, commands inside them), one at a time and with many
 * in flight. Robust on a loaded machine, where the outside method's throughput ratios are not:
 * CPU time and counts do not depend on who else runs.
 *
 *   node dist/bench/store-cpu.js [checks=2000] [inFlight=1] [redisUrl=redis://127.0.0.1:6379]
 *
 * A Check here is the production policy's shape: 38 deciding ops on four tags (limited and
 * plain windows, profile reads, places' distinct counts, the quota) and 12 record ops sent as
 * a background batch, like the pipeline's gather and record phases.
 */
import { Redis } from "ioredis";
import { createRedisStore } from "../src/state/redis-store.js";
import type { StoreOp } from "../src/state/store.js";

const TAGS = ["s:alice", "o:acme", "ip:10.0.0.1", "d:dev1"] as const;
const UNREACHED = 1_000_000_000;

function deciding(): StoreOp[] {
  const ops: StoreOp[] = [];
  for (const tag of TAGS) {
    ops.push(
      { op: "window", key: { tag, name: "rate" }, windowMs: 60_000, cost: 0, limit: UNREACHED },
      { op: "window", key: { tag, name: "failed" }, windowMs: 600_000, cost: 0 },
      { op: "has", key: { tag, name: "countries" }, member: "FR" },
      { op: "has", key: { tag, name: "devices" }, member: "dev1" },
      { op: "get", key: { tag, name: "loc" } },
      {
        op: "baseline",
        key: { tag, name: "base" },
        bucketMs: 60_000,
        alpha: 0.1,
        ttlMs: 600_000,
        cost: 0,
      },
      { op: "distinct", key: { tag, name: "pl:countries" }, member: "FR", windowMs: 3_600_000 },
      { op: "distinct", key: { tag, name: "pl:asns" }, member: "AS3320", windowMs: 3_600_000 },
      { op: "count", key: { tag, name: "quota:2026-12" }, cost: 0, ttlMs: 60_000 },
    );
  }
  ops.push(
    {
      op: "window",
      key: { tag: "s:alice", name: "vel" },
      windowMs: 60_000,
      cost: 1,
      limit: UNREACHED,
    },
    { op: "window", key: { tag: "s:alice", name: "pace" }, windowMs: 60_000, cost: 1 },
  );
  return ops;
}

function record(): StoreOp[] {
  const ops: StoreOp[] = [];
  for (const tag of TAGS.slice(1)) {
    ops.push(
      { op: "window", key: { tag, name: "rate" }, windowMs: 60_000, cost: 1, limit: UNREACHED },
      { op: "count", key: { tag, name: "quota:2026-12" }, cost: 1, ttlMs: 60_000 },
    );
  }
  const tag = "s:alice";
  ops.push(
    { op: "swap", key: { tag, name: "loc" }, value: "52.52,13.40,1765000000,DE", ttlMs: 600_000 },
    { op: "member", key: { tag, name: "countries" }, member: "DE", ttlMs: 600_000, max: 8 },
    { op: "member", key: { tag, name: "devices" }, member: "dev1", ttlMs: 600_000, max: 8 },
    {
      op: "baseline",
      key: { tag, name: "base" },
      bucketMs: 60_000,
      alpha: 0.1,
      ttlMs: 600_000,
      cost: 1,
    },
    { op: "member", key: { tag, name: "nets" }, member: "10.0.0.0/24", ttlMs: 600_000, max: 32 },
    { op: "window", key: { tag: "ip:10.0.0.1", name: "failed" }, windowMs: 600_000, cost: 0 },
  );
  return ops;
}

/** Scripts sent, their time inside Redis (µs, wall), and the commands they ran. */
async function redisStats(
  admin: Redis,
): Promise<{ scripts: number; usec: number; inside: number }> {
  const text = await admin.info("commandstats");
  let scripts = 0;
  let usec = 0;
  let inside = 0;
  for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)) {
    const [, cmd, calls, us] = m;
    if (cmd === "evalsha" || cmd === "eval") {
      scripts += Number(calls);
      usec += Number(us);
    } else if (cmd !== "info" && cmd !== "config") inside += Number(calls);
  }
  return { scripts, usec, inside };
}

async function main(): Promise<void> {
  const [checksArg = "2000", inFlightArg = "1", url = "redis://127.0.0.1:6379"] =
    process.argv.slice(2);
  const checks = Number(checksArg);
  const inFlight = Number(inFlightArg);
  const store = createRedisStore({ url, keyPrefix: `rgcpu${process.pid}:` });
  await store.ready();
  const admin = new Redis(url);
  const check = async () => {
    await store.exec({ ops: deciding(), now: Date.now() });
    store.exec({ ops: record(), now: Date.now(), background: true }).catch(() => undefined);
  };
  for (let i = 0; i < 300; i++) await check(); // scripts loaded, keys made, JIT warm
  const before = await redisStats(admin);
  const cpu = process.cpuUsage();
  let next = 0;
  const worker = async () => {
    while (next++ < checks) await check();
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const used = process.cpuUsage(cpu);
  await store.close(); // sends the last held writes
  const after = await redisStats(admin);
  await admin.quit();
  const per = (n: number) => (n / checks).toFixed(2);
  console.log(
    JSON.stringify({
      checks,
      inFlight,
      clientCpuUsPerCheck: per(used.user + used.system),
      scriptsPerCheck: per(after.scripts - before.scripts),
      commandsInsidePerCheck: per(after.inside - before.inside),
      redisUsPerCheck: per(after.usec - before.usec),
    }),
  );
}

await main();
