import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest } from "../../src/access/request.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { createRedisStore, type RedisStore } from "../../src/state/redis-store.js";
import type { Store, StoreBatch, StoreOp } from "../../src/state/store.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { type RedisProcess, redisAvailable, startRedis } from "../helpers/redis-server.js";

// signals.stuffing on shared state: the org's trusted countries, the subject's first trusted
// time and the orgs per address live in Redis, as replicas share them.

const OFFICE = "192.0.2.10";
const PROXY_DE = "203.0.113.40";
const BOT_BR = "198.51.100.20";
const geo = fixedGeo(
  {
    [OFFICE]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
    [PROXY_DE]: { country: "DE", latitude: 50.11, longitude: 8.68, asn: 3209 },
    [BOT_BR]: { country: "BR", latitude: -23.55, longitude: -46.633, asn: 28573 },
  } satisfies Record<string, GeoLocation>,
  { city: true, asn: true },
);
const person = (sub: string, org: string) => ({ sub, org, tier: "pro", amr: ["pwd", "mfa"] });
const claims = {
  alice: person("u-alice", "acme"),
  dormant: person("u-acme-dormant", "acme"),
  carol: person("u-carol", "acme"),
  other1: person("u-other-1", "globex"),
  other2: person("u-other-2", "initech"),
};
const minutes = (m: number) => TEST_NOW + m * 60_000;
const codes = (v: { reasons: readonly { code: string }[] }) => v.reasons.map((r) => r.code);

describe.runIf(redisAvailable())("credential stuffing on real state (Redis)", () => {
  let redis: RedisProcess;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = createRedisStore({ url: redis.url, keyPrefix: "rg:" });
    await store.ready();
  });
  afterAll(async () => {
    await store.close();
    await redis.stop();
  });

  function setup() {
    const policy = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");
    const runtime = policySnapshotOf(policy, fakeIdentifier(claims));
    // the writes after a verdict go out in a background batch nobody awaits: the test awaits
    // them before the next Check reads, however long they take on a loaded machine
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
    return async (token: string, clientIp: string, at: number) => {
      const headers = new Map([["authorization", `Bearer ${token}`]]);
      const req: AccessRequest = accessRequest({
        id: `r${++n}`,
        headers,
        clientIp,
        receivedAt: minutes(at),
      });
      const { verdict } = await pipeline.evaluate(runtime, req);
      await Promise.all(landing);
      return verdict;
    };
  }

  it("learns the org's country from a member trusted for an hour, and judges a dormant account by it", async () => {
    const check = setup();
    expect((await check("alice", OFFICE, -120)).kind).toBe("allow");
    expect((await check("alice", OFFICE, -59)).kind).toBe("allow");
    const stuffed = await check("dormant", BOT_BR, 0);
    expect(codes(stuffed)).toContain("stuffing.org_new_country");
    expect(stuffed.kind).toBe("challenge");
  });

  it("refuses a subject not trusted on an address that carried three orgs", async () => {
    const check = setup();
    await check("other1", PROXY_DE, 1);
    await check("other2", PROXY_DE, 2);
    await check("dormant", PROXY_DE, 3);
    const next = await check("carol", PROXY_DE, 4);
    expect(codes(next)).toContain("stuffing.many_orgs_ip");
    expect(next.kind).toBe("challenge");
  });
});
