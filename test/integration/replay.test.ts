import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { generateTraffic } from "../../bench/replay-traffic.js";
import type { KeySource } from "../../src/access/key-source.js";
import { parsePolicy } from "../../src/access/policy.js";
import { buildCheckRequest } from "../../src/cli/check.js";
import {
  createDevKeySource,
  type DevKeys,
  loadOrCreateDevKeys,
  mintDevToken,
} from "../../src/cli/dev-keys.js";
import type { GeoReader } from "../../src/geo/geo-reader.js";
import { openEmbeddedGeoReader } from "../../src/geo/geo-reader.js";
import {
  type DecisionRecord,
  type ReplayOptions,
  replay,
  replayDecisions,
} from "../../src/replay/replay.js";
import type { Store } from "../../src/state/store.js";
import { createAudit } from "../../src/telemetry/audit.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry } from "../../src/telemetry/telemetry.js";
import { startTestServer } from "../helpers/server.js";

/**
 * `riskgate replay` as a library, over the real pipeline: real ES256 tokens minted by a dev key,
 * the embedded memory store and the embedded DB-IP geo database.
 */
// thousands of real decisions (and token signatures) a test: slow on a busy machine
vi.setConfig({ testTimeout: 60_000 });

const demo = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "policies/demo.yaml");
const ISS = "https://riskgate.dev/demo";
const AUD = "demo-api";
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);

let keys: DevKeys;
let keySource: KeySource;
let geo: GeoReader;
beforeAll(async () => {
  keys = await loadOrCreateDevKeys(join(mkdtempSync(join(tmpdir(), "riskgate-replay-")), "keys"));
  keySource = createDevKeySource(keys.publicJwks);
  geo = await openEmbeddedGeoReader();
});

async function* each(lines: readonly string[]): AsyncGenerator<string> {
  yield* lines;
}

async function collect(
  lines: readonly string[],
  options: Partial<ReplayOptions> = {},
): Promise<DecisionRecord[]> {
  const out: DecisionRecord[] = [];
  for await (const r of replay({ policy: demo, keys: keySource, geo, ...options }, each(lines))) {
    out.push(r);
  }
  return out;
}

async function traffic(n: number, protoNames = false): Promise<string[]> {
  const out: string[] = [];
  for await (const line of generateTraffic({
    keys,
    iss: ISS,
    aud: AUD,
    lines: n,
    start: T0,
    gapMs: 400,
    users: 40,
    seed: 7,
    protoNames,
  })) {
    out.push(line);
  }
  return out;
}

/** One CheckRequest line in proto3 JSON (lowerCamelCase names). */
function line(o: {
  id: string;
  time?: string;
  token?: string;
  path?: string;
  ip?: string;
}): string {
  const headers: Record<string, string> = { ":path": o.path ?? "/v1/items", "user-agent": "sdk/1" };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  return JSON.stringify({
    attributes: {
      source: { address: { socketAddress: { address: o.ip ?? "81.2.69.142", portValue: 1 } } },
      request: {
        ...(o.time === undefined ? {} : { time: o.time }),
        http: {
          id: o.id,
          method: "GET",
          host: "api.example.com",
          path: o.path ?? "/v1/items",
          headers,
        },
      },
    },
  });
}

const token = (nowMs: number, ttlSeconds = 600, sub = "alice") =>
  mintDevToken(keys, { iss: ISS, aud: AUD, sub, tier: "pro", org: "acme", ttlSeconds, nowMs });

const notBefore = (nowMs: number, nbfMs: number) =>
  mintDevToken(keys, {
    iss: ISS,
    aud: AUD,
    sub: "bob",
    tier: "pro",
    ttlSeconds: 7200,
    nowMs,
    extra: { nbf: Math.floor(nbfMs / 1000) },
  });

const iso = (ms: number) => new Date(ms).toISOString();
const codes = (r: DecisionRecord | undefined) => r?.reasons.map((x) => x.code);

describe("riskgate replay", () => {
  it("gives the same decisions for the same input and policy, every time", async () => {
    const input = await traffic(3000);
    const first = await collect(input);
    const second = await collect(input);
    expect(second).toEqual(first);
    expect(first).toHaveLength(3000);
    // the input exercises more than one path through the pipeline
    expect(new Set(first.map((r) => r.decision)).size).toBeGreaterThanOrEqual(3);
    expect(new Set(first.flatMap((r) => codes(r) ?? [])).size).toBeGreaterThanOrEqual(6);
  });

  it("reads lowerCamelCase JSON names and the .proto field names alike", async () => {
    const camel = await traffic(300);
    const proto = await traffic(300, true);
    expect(proto[0]).toContain('"socket_address"');
    expect(camel[0]).toContain('"socketAddress"');
    expect(await collect(proto)).toEqual(await collect(camel));
  });

  it("judges a token at the recorded time: valid now but expired then is refused", async () => {
    const now = Date.now();
    const validNow = await token(now, 3600);
    const [then, before] = await collect([
      line({ id: "a", time: iso(now - 10_000), token: validNow }),
      line({ id: "b", time: iso(now + 2 * 3600_000), token: validNow }),
    ]);
    expect(then?.decision).toBe("allow");
    expect(before?.decision).toBe("deny");
    expect(codes(before)).toEqual(["identity.expired"]);
  });

  it("judges a token at the recorded time: expired now but valid then is allowed", async () => {
    const old = Date.UTC(2021, 0, 5, 10, 0, 0);
    const expiredNow = await token(old, 600);
    const [during, issuedLater] = await collect([
      line({ id: "a", time: iso(old + 60_000), token: expiredNow }),
      // nbf after the recorded time (beyond the 30 s skew), long past now: not yet valid then
      line({ id: "b", time: iso(old + 120_000), token: await notBefore(old, old + 3600_000) }),
    ]);
    expect(during?.decision).toBe("allow");
    expect(issuedLater?.decision).toBe("deny");
    expect(codes(issuedLater)).toEqual(["identity.not_yet_valid"]);
  });

  it("refuses a line without attributes.request.time, naming the line", async () => {
    await expect(
      collect([line({ id: "a", time: iso(T0) }), "", line({ id: "c" })]),
    ).rejects.toThrow(/^line 3: attributes\.request\.time is missing/);
    await expect(collect([line({ id: "a", time: "yesterday" })])).rejects.toThrow(
      /^line 1: attributes\.request\.time: not an RFC 3339 time/,
    );
    await expect(collect(['{"attributes":{"sorce":{}}}'])).rejects.toThrow(
      /^line 1: attributes\.sorce: unknown field/,
    );
  });

  it("refuses a line earlier than one already decided, or reorders it within the window", async () => {
    const t = await token(T0, 3600);
    const input = [
      line({ id: "a", time: iso(T0 + 1000), token: t }),
      line({ id: "b", time: iso(T0 + 3000), token: t }),
      line({ id: "c", time: iso(T0 + 2000), token: t }),
    ];
    await expect(collect(input)).rejects.toThrow(/^line 3: time .* is before line 2's/);
    const sorted = await collect(input, { reorderWindowMs: 5000 });
    expect(sorted.map((r) => r.request_id)).toEqual(["a", "c", "b"]);
    expect(sorted.map((r) => r.time)).toEqual([iso(T0 + 1000), iso(T0 + 2000), iso(T0 + 3000)]);
    // a line later than the window is still an error
    await expect(
      collect(
        [
          line({ id: "a", time: iso(T0 + 10_000), token: t }),
          line({ id: "b", time: iso(T0 + 30_000), token: t }),
          line({ id: "c", time: iso(T0), token: t }),
        ],
        { reorderWindowMs: 5000 },
      ),
    ).rejects.toThrow(/^line 3: /);
  });

  it("replays riskgate's own audit lines to the decisions they record", async () => {
    const written: string[] = [];
    const key = "replay-test";
    const audit = createAudit({
      allowSampleRate: 1,
      subject: "hash",
      hash: (v) => createHmac("sha256", key).update(v).digest("hex").slice(0, 16),
      destination: new Writable({
        write(chunk, _enc, done) {
          written.push(String(chunk));
          done();
        },
      }),
    });
    const input = await traffic(1500);
    const live: DecisionRecord[] = [];
    for await (const d of replayDecisions({ policy: demo, keys: keySource, geo }, each(input))) {
      live.push(d.record);
      audit.record(
        { decision: d.decision, req: d.req, traceHeader: () => undefined, durationNs: 1000n },
        undefined,
      );
    }
    await audit.flush();
    const lines = written.join("").split("\n").filter(Boolean);
    expect(lines).toHaveLength(1500);
    for (const l of lines) {
      // no token or device id in the clear in what replay reads back
      expect(l).not.toMatch(/eyJ|dev-\d/);
    }
    // an operational log line on the same stdout is skipped, not an error
    lines.splice(
      7,
      0,
      '{"level":30,"time":"2026-11-20T09:00:01.000Z","service":"riskgate","msg":"policy reloaded"}',
    );
    const again = await collect(lines);
    const view = (r: DecisionRecord) => [
      r.request_id,
      r.decision,
      r.score,
      codes(r),
      r.route,
      r.tier,
    ];
    expect(again.map(view)).toEqual(live.map(view));
  });
});

describe("a budget failure's audit line", () => {
  it("carries the verified caller, so replay decides it as that caller", async () => {
    const written: string[] = [];
    const telemetry = createTelemetry(
      {
        tracing: { enabled: false, subjectAttribute: "off" },
        metrics: { enabled: false },
        audit: {
          enabled: true,
          allowSampleRate: 1,
          subject: "plain",
          destination: new Writable({
            write(chunk, _enc, done) {
              written.push(String(chunk));
              done();
            },
          }),
        },
      },
      { logger: createLogger("silent") },
    );
    // identity answers, the store never does: the 100 ms budget decides
    const stalled: Store = {
      kind: "memory",
      exec: () => new Promise(() => {}),
      close: async () => {},
    };
    const s = await startTestServer({ store: stalled, telemetry });
    try {
      const token = await s.token({ sub: "ann", tier: "pro", org: "acme", amr: ["mfa"] });
      await s.client.check(
        buildCheckRequest({
          method: "GET",
          path: "/v1/items",
          host: "api.example.com",
          ip: "81.2.69.142",
          headers: {},
          token,
        }),
      );
    } finally {
      await s.stop();
    }
    await telemetry.flush();
    const lines = written.join("").split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] as string);
    expect(line).toMatchObject({
      decision: "deny",
      reasons: [{ code: "failure.budget" }],
      subject: "ann",
      org: "acme",
      tier: "pro",
      caller: { tier: "pro", amr: ["mfa"] },
    });
    // replay has no budget: the recorded caller is decided again, never as a missing identity
    const [again] = await collect(lines);
    expect(codes(again as DecisionRecord)).not.toContain("identity.missing");
    expect(again).toMatchObject({ decision: "allow", tier: "pro" });
    await telemetry.shutdown();
  });
});
