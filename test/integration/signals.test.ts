import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCheckRequest, describeResponse } from "../../src/cli/check.js";
import { type GeoReader, openEmbeddedGeoReader } from "../../src/geo/geo-reader.js";
import { createGuardedStore } from "../../src/state/guarded-store.js";
import { createRedisStore } from "../../src/state/redis-store.js";
import { type RedisProcess, redisAvailable, startRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const available = redisAvailable();
// an hour-long velocity window: a burst of requests never straddles two windows
const policyText = readFileSync("policies/demo.yaml", "utf8").replace(
  "window_seconds: 60",
  "window_seconds: 3600",
);

function get(token: string, ip = "203.0.113.7", path = "/v1/items") {
  return buildCheckRequest({
    method: "GET",
    path,
    host: "api.example.com",
    ip,
    headers: {},
    token,
  });
}
const codes = (body: string) =>
  (JSON.parse(body) as { reasons: { code: string }[] }).reasons.map((r) => r.code);

describe.runIf(available)("signals on real state (Redis)", () => {
  let redis: RedisProcess;
  let a: TestServer;
  let b: TestServer;
  const newStore = async () => {
    const store = createRedisStore({ url: redis.url, keyPrefix: "rg:" });
    await store.ready();
    return createGuardedStore(store, { timeoutMs: 100, failureThreshold: 2, resetAfterMs: 100 });
  };

  beforeAll(async () => {
    redis = await startRedis();
    a = await startTestServer({ policyText, store: await newStore() });
    b = await startTestServer({ policyText, store: await newStore() });
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await redis.stop();
  });

  it("two replicas share one velocity limit", async () => {
    // both servers trust their own dev key: mint on each
    const ta = await a.token({ sub: "shared-user", tier: "free", amr: ["mfa"] });
    const tb = await b.token({ sub: "shared-user", tier: "free", amr: ["mfa"] });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = i % 2 === 0 ? a : b;
      statuses.push((await s.client.check(get(i % 2 === 0 ? ta : tb))).status.code);
    }
    expect(statuses).toEqual(new Array(20).fill(grpc.status.OK));
    const res = await b.client.check(get(tb));
    expect(res.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(codes(describeResponse(res).body)).toContain("velocity.subject");
  });

  it("decides on one script, and writes what the verdict allows on the next one", async () => {
    // usage baseline, places and the machine baseline off: an allowed request counts into them
    // after the verdict, which would give every allowed request a write (signals.test.ts and
    // machine-baseline-redis.test.ts cover those records)
    const orgLimits = policyText
      .replace(
        "limits: { requests_per_window: 300 }",
        "limits: { requests_per_window: 300, org_requests_per_window: 1000 }",
      )
      .replace(
        "\nsignals:\n",
        "\nsignals:\n  usage_anomaly: { enabled: false }\n  machine_baseline: { enabled: false }\n  places: { enabled: false }\n",
      );
    // writes wait for the next Check up to 80 ms (under the guard's 100 ms timeout), so the
    // test's back-to-back Checks are carried even on a loaded machine
    const store = createRedisStore({ url: redis.url, keyPrefix: "rg:", writeDelayMs: 80 });
    await store.ready();
    const guarded = createGuardedStore(store, {
      timeoutMs: 100,
      failureThreshold: 2,
      resetAfterMs: 100,
    });
    const server = await startTestServer({ policyText: orgLimits, store: guarded });
    const admin = new Redis(redis.url);
    const scripts = async () => {
      const stats = await admin.info("commandstats");
      const calls = (name: string) =>
        Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      return calls("evalsha") + calls("eval");
    };
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    /**
     * Scripts run since `from`, once at least `n` have: the writes after a verdict land when
     * they land (later on a loaded machine); then a moment more for any that should not come.
     */
    const ran = async (from: number, n: number) => {
      while ((await scripts()) - from < n) await pause(20);
      await pause(100);
      return (await scripts()) - from;
    };
    try {
      const t = await server.token({ sub: "trips", tier: "pro", org: "trips-org", amr: ["mfa"] });
      let before = await scripts();
      await server.client.check(get(t)); // loads the script on this connection
      await ran(before, 2);
      before = await scripts();
      // served: the deciding batch, then the org window's count after the verdict
      expect((await server.client.check(get(t))).status.code).toBe(grpc.status.OK);
      expect(await ran(before, 2)).toBe(2);
      // back to back: the second Check's deciding script carries the first's writes, and its
      // own go alone once no Check follows: three scripts for two Checks, not four
      before = await scripts();
      expect((await server.client.check(get(t))).status.code).toBe(grpc.status.OK);
      expect((await server.client.check(get(t))).status.code).toBe(grpc.status.OK);
      expect(await ran(before, 3)).toBe(3);
      // served with nothing to write after (no org, no geo, and a machine token: no
      // population pace of people to count): the deciding batch only
      const lone = await server.token({ sub: "trips-lone", client_id: "trips-lone", tier: "pro" });
      before = await scripts();
      await server.client.check(get(lone));
      await ran(before, 1);
      before = await scripts();
      expect((await server.client.check(get(lone))).status.code).toBe(grpc.status.OK);
      expect(await ran(before, 1)).toBe(1);
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });

  it("applies the failure mode while Redis is down and recovers when it returns", async () => {
    const t = await a.token({ sub: "outage-user", tier: "pro", amr: ["mfa"] });
    expect((await a.client.check(get(t))).status.code).toBe(grpc.status.OK);
    await redis.stop();
    const down = await a.client.check(get(t));
    expect(down.status.code).toBe(grpc.status.UNAVAILABLE); // demo policy: failure.mode closed
    expect(describeResponse(down).httpStatus).toBe(503);
    expect(codes(describeResponse(down).body)).toEqual(["failure.store"]);
    // the server stays up and keeps answering every request
    for (let i = 0; i < 5; i++) {
      expect((await a.client.check(get(t))).status.code).toBe(grpc.status.UNAVAILABLE);
    }
    await redis.restart();
    // as long as reconnecting takes on a busy machine (the test's timeout bounds it)
    let code = -1;
    while (code !== grpc.status.OK) {
      await new Promise((r) => setTimeout(r, 100));
      code = (await a.client.check(get(t))).status.code;
    }
    expect(code).toBe(grpc.status.OK);
  }, 90_000);
});

describe("geo signals with the embedded DB-IP database", () => {
  let geo: GeoReader;
  let s: TestServer;
  beforeAll(async () => {
    geo = await openEmbeddedGeoReader();
    s = await startTestServer({ policyText, geo });
  });
  afterAll(async () => {
    await s.stop();
    geo.close();
  });

  it("sees impossible travel and a new country between two requests", async () => {
    const t = await s.token({ sub: "traveller", tier: "pro", amr: ["mfa"] });
    const home = await s.client.check(get(t, "8.8.8.8")); // US
    expect(home.status.code).toBe(grpc.status.OK);
    const away = await s.client.check(get(t, "193.0.6.139")); // NL, seconds later
    const view = describeResponse(away);
    expect(view.decision).toBe("challenge");
    expect(codes(view.body)).toEqual(
      expect.arrayContaining(["geo.impossible_travel", "geo.new_country"]),
    );
  });

  // a hosting ASN signal that silently never fired was a real defect: the embedded default
  // now carries ASN data, so hosting_asn scores without a database of one's own
  it("scores a hosting ASN with the embedded data alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-asn-"));
    const file = join(dir, "hosting.txt");
    writeFileSync(file, "AS16509\n");
    const hosting = `${policyText}\n`.replace(
      "signals:\n",
      `signals:\n  hosting_asn: { enabled: true, file: ${JSON.stringify(file)}, points: 60 }\n`,
    );
    const server = await startTestServer({ policyText: hosting, geo });
    try {
      const t = await server.token({ sub: "cloud", tier: "pro", amr: ["mfa"] });
      // 60 points: past the pro tier's challenge_at, so the reasons come back in the body
      const res = await server.client.check(get(t, "52.94.76.10")); // AWS, AS16509
      const view = describeResponse(res);
      expect(view.decision).toBe("challenge");
      expect(codes(view.body)).toContain("ip.hosting_asn");
      const home = await server.token({ sub: "home", tier: "pro", amr: ["mfa"] });
      expect((await server.client.check(get(home, "193.0.6.139"))).status.code).toBe(
        grpc.status.OK,
      );
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true });
    }
  });

  it("refuses a policy whose hosting_asn has no ASN data to read", async () => {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-asn-"));
    const file = join(dir, "hosting.txt");
    writeFileSync(file, "AS16509\n");
    const hosting = `${policyText}\n`.replace(
      "signals:\n",
      `signals:\n  hosting_asn: { enabled: true, file: ${JSON.stringify(file)} }\n`,
    );
    try {
      await expect(startTestServer({ policyText: hosting })).rejects.toMatchObject({
        code: "RISKGATE_SIGNAL_DATA_MISSING",
      });
      const cityOnly = await openEmbeddedGeoReader({ families: [4], asn: false });
      try {
        await expect(startTestServer({ policyText: hosting, geo: cityOnly })).rejects.toMatchObject(
          { code: "RISKGATE_SIGNAL_DATA_MISSING" },
        );
      } finally {
        cityOnly.close();
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("blocks a country the tier denies", async () => {
    const denied = policyText.replace(
      "    entitlements: [api.read]\n",
      "    entitlements: [api.read]\n    countries: { deny: [nl] }\n",
    );
    const server = await startTestServer({ policyText: denied, geo });
    try {
      const t = await server.token({ sub: "abroad", tier: "free", amr: ["mfa"] });
      const res = await server.client.check(get(t, "193.0.6.139"));
      expect(res.status.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(codes(describeResponse(res).body)).toContain("geo.country_denied");
      const home = await server.token({ sub: "at-home", tier: "free", amr: ["mfa"] });
      expect((await server.client.check(get(home, "8.8.8.8"))).status.code).toBe(grpc.status.OK);
    } finally {
      await server.stop();
    }
  });
});
