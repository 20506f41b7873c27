import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { createRedisStore, type RedisStore } from "../../src/state/redis-store.js";
import type { Store, StoreBatch, StoreOp } from "../../src/state/store.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { type RedisProcess, redisAvailable, startRedis } from "../helpers/redis-server.js";

// signals.machine_baseline on shared state: what a machine was trusted with (networks, ASNs,
// hours, age, peak) lives in Redis under the machine's hash tag, as replicas share it. Redis
// keeps time by its own clock, so these checks do not wait out the learning hour: one policy
// judges from the first trusted request (learn_seconds: 0), one keeps the default.

const NAT = "198.51.100.10";
const ELSEWHERE = "203.0.113.50";
const geo = fixedGeo(
  {
    [NAT]: { country: "US", latitude: 39.04, longitude: -77.49, asn: 16509 },
    [ELSEWHERE]: { country: "NL", latitude: 52.37, longitude: 4.9, asn: 60781 },
  } satisfies Record<string, GeoLocation>,
  { city: true, asn: true },
);
const claims = {
  svc: { sub: "0oa-svc", cid: "0oa-svc", tier: "enterprise", org: "big" },
  fresh: { sub: "0oa-fresh", cid: "0oa-fresh", tier: "enterprise", org: "big" },
};
const demo = readFileSync("policies/demo.yaml", "utf8");
const machineCodes = (v: { reasons: readonly { code: string }[] }) =>
  v.reasons.map((r) => r.code).filter((c) => c.startsWith("machine."));

describe.runIf(redisAvailable())("a machine judged against itself on real state (Redis)", () => {
  let redis: RedisProcess;
  let store: RedisStore;
  let admin: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    store = createRedisStore({ url: redis.url, keyPrefix: "rg:" });
    await store.ready();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await store.close();
    await redis.stop();
  });

  function setup(policyText: string) {
    const runtime = policySnapshotOf(parsePolicy(policyText, "t.yaml"), fakeIdentifier(claims));
    // the writes after a verdict go out in a background batch: awaited before the next Check
    const landing = new Set<Promise<unknown>>();
    const tracked: Store = {
      kind: store.kind,
      exec<const T extends readonly StoreOp[]>(batch: StoreBatch<T>) {
        const done = store.exec(batch);
        if (batch.background) {
          const landed = done.catch(() => {});
          landing.add(landed);
          void landed.finally(() => landing.delete(landed));
        }
        return done;
      },
      close: () => store.close(),
    };
    const pipeline = createPipeline({ store: tracked, clock: () => TEST_NOW, geo });
    let n = 0;
    return async (token: string, clientIp: string) => {
      const headers = new Map([["authorization", `Bearer ${token}`]]);
      const req = accessRequest({ id: `r${++n}`, headers, clientIp });
      const { verdict } = await pipeline.evaluate(runtime, req);
      await Promise.all(landing);
      return verdict;
    };
  }

  it("learns a machine's egress under its hash tag, with TTLs, and finds a new one", async () => {
    const check = setup(
      demo.replace("\nsignals:\n", "\nsignals:\n  machine_baseline: { learn_seconds: 0 }\n"),
    );
    expect(machineCodes(await check("svc", NAT))).toEqual([]);
    for (const name of ["mb:nets", "mb:asns", "mb:hours", "mb:age", "mb:rate", "mb:peak"]) {
      const ttl = await admin.pttl(`rg:{s:0oa-svc}:${name}`);
      expect([name, ttl > 0]).toEqual([name, true]);
    }
    expect(await admin.zcard("rg:{s:0oa-svc}:mb:nets")).toBeGreaterThan(0);
    expect(machineCodes(await check("svc", NAT))).toEqual([]);
    expect(machineCodes(await check("svc", ELSEWHERE))).toEqual(["machine.new_egress"]);
  });

  it("finds nothing about a new machine in its learning hour (the default)", async () => {
    const check = setup(demo);
    await check("fresh", NAT);
    expect(machineCodes(await check("fresh", ELSEWHERE))).toEqual([]);
  });
});
