import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateTraffic } from "../../bench/replay-traffic.js";
import { parsePolicy } from "../../src/access/policy.js";
import { describeResponse } from "../../src/cli/check.js";
import { createDevKeySource } from "../../src/cli/dev-keys.js";
import { type GeoReader, openEmbeddedGeoReader } from "../../src/geo/geo-reader.js";
import { createCheckJsonReader } from "../../src/replay/check-json.js";
import { replay } from "../../src/replay/replay.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Replay decides as the live server does: the same CheckRequests sent over real gRPC to the real
 * server (its clock set to each request's recorded time, proto-loader decoding the binary
 * message) and replayed from their JSON lines give the same decisions, line by line.
 */
// a generous budget: the live side must not answer failure.budget on a busy test machine
const text = readFileSync("policies/demo.yaml", "utf8").replace(
  "budget_ms: 100",
  "budget_ms: 5000",
);
const T0 = Date.UTC(2026, 10, 21, 8, 0, 0);

let server: TestServer;
let geo: GeoReader;
let now = T0;
beforeAll(async () => {
  geo = await openEmbeddedGeoReader();
  server = await startTestServer({ policyText: text, geo, clock: () => now });
});
afterAll(async () => {
  server.client.close();
  await server.stop();
});

describe("replay and the live server", () => {
  it("decide the same recorded requests alike", async () => {
    const lines: string[] = [];
    for await (const line of generateTraffic({
      keys: server.devKeys,
      iss: "https://riskgate.dev/demo",
      aud: "demo-api",
      lines: 600,
      start: T0,
      gapMs: 250,
      users: 12,
      seed: 3,
    })) {
      lines.push(line);
    }
    const read = createCheckJsonReader();
    const live: string[] = [];
    for (const line of lines) {
      const { message, time } = read(JSON.parse(line));
      now = time as number;
      live.push(describeResponse(await server.client.check(message)).decision);
    }
    const replayed: string[] = [];
    const policy = parsePolicy(text, "demo.yaml");
    async function* each() {
      yield* lines;
    }
    for await (const r of replay(
      { policy, keys: createDevKeySource(server.devKeys.publicJwks), geo },
      each(),
    )) {
      replayed.push(r.decision);
    }
    expect(replayed).toEqual(live);
    expect(new Set(live).size).toBeGreaterThanOrEqual(3);
  });
});
