import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { createRedisStore, type RedisStore } from "../../src/state/redis-store.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";
import { type RedisProcess, redisAvailable, startRedis } from "../helpers/redis-server.js";

// A passed step-up on shared state: the challenge kept in Redis, answered by a login after it,
// teaches the new country; the stolen session stays refused. (The same on memory: unit tests.)

const policy = readFileSync("policies/demo.yaml", "utf8").replace(
  "\nsignals:\n",
  // places off: Redis expires its distinct-country window by its own clock, not the test's
  // fixed one, so the morning's country would still be in it fourteen hours later
  "\nsignals:\n  new_country: { enabled: true, points: 50 }\n  places: { enabled: false }\n",
);
const BERLIN = "192.0.2.10";
const PARIS = "198.51.100.20";
const TORONTO = "203.0.113.40";
const where: Record<string, GeoLocation> = {
  [BERLIN]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [PARIS]: { country: "FR", latitude: 48.857, longitude: 2.352, asn: 3215 },
  [TORONTO]: { country: "CA", latitude: 43.65, longitude: -79.38, asn: 812 },
};
const TRIP = 14 * 60;
const session = (authAt: number) => ({
  sub: "u-ann",
  tier: "pro",
  org: "acme",
  amr: ["pwd", "mfa"],
  auth_time: Math.floor(authAt / 1000),
});
const claims = { morning: session(TEST_NOW - 3600_000), steppedUp: session(minutes(TRIP + 2)) };

describe.runIf(redisAvailable())("a passed step-up on Redis", () => {
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

  it("clears the new country for the person who stepped up, not for the stolen session", async () => {
    const check = pipelineCheck(policy, {
      claims,
      geo: fixedGeo(where, { city: true, asn: true }),
      store,
    });
    // the writes after a verdict go out in the background: a background read queued behind
    // them answers once they are in Redis, so each request sees what the one before taught
    const settled = () =>
      store.exec({
        ops: [{ op: "get", key: { tag: "s:settle", name: "x" } }],
        now: TEST_NOW,
        background: true,
      });
    const at = async (token: string, ip: string, device: string, m: number) => {
      const headers = new Map([["x-device-id", device]]);
      const verdict = await check(token, { clientIp: ip, receivedAt: minutes(m), headers });
      await settled();
      return verdict;
    };
    expect((await at("morning", BERLIN, "laptop", 0)).kind).toBe("allow");
    expect((await at("morning", PARIS, "laptop", TRIP)).kind).toBe("challenge");
    const stepped = await at("steppedUp", PARIS, "laptop", TRIP + 3);
    expect(stepped.kind).toBe("allow");
    expect(codes(stepped)).toContain("challenge.stepped_up");
    expect(codes(await at("steppedUp", PARIS, "laptop", TRIP + 4))).not.toContain(
      "geo.new_country",
    );
    const thief = await at("morning", TORONTO, "thief-pc", TRIP + 30);
    expect(["challenge", "deny"]).toContain(thief.kind);
    expect(codes(thief)).not.toContain("challenge.stepped_up");
  });
});
