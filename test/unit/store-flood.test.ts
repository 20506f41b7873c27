import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { anonymousCaller } from "../../src/access/license.js";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import { type SignalContext, tags } from "../../src/access/signals/signal.js";
import { createMemoryStore, isAddressTag } from "../../src/state/memory-store.js";
import type { StoreOp } from "../../src/state/store.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

// Memory store: keys that anonymous traffic from fresh client IPs creates
// must never push out an authenticated caller's state.
const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const vel = (tag: string): StoreOp => ({
  op: "window",
  key: { tag, name: "vel" },
  windowMs: 3_600_000,
  cost: 1,
});

describe("memory store budgets per key class", () => {
  it("classes the tags the signals write for anonymous traffic as per-address", () => {
    const ctx = {
      req: accessRequest({ clientIp: "192.0.2.1" }),
      caller: anonymousCaller("anon", "192.0.2.1"),
      deviceId: "dev-1",
    } as unknown as SignalContext;
    expect(isAddressTag(tags.ip(ctx))).toBe(true);
    expect(isAddressTag(tags.subject(ctx))).toBe(true);
    const signed = { ...ctx, caller: { ...ctx.caller, subject: "alice", org: "acme" } };
    expect(isAddressTag(tags.subject(signed))).toBe(false);
    expect(isAddressTag(tags.org(signed))).toBe(false);
    expect(isAddressTag(tags.device(signed))).toBe(false);
  });

  it("keeps callers' counters through a flood of per-address keys 10x its budget", async () => {
    const store = createMemoryStore({ maxKeys: 100, maxAddressKeys: 100 });
    for (let i = 0; i < 5; i++) await store.exec({ ops: [vel("s:alice")], now: TEST_NOW });
    for (let i = 0; i < 1000; i++) {
      const ip = ipOf(i);
      await store.exec({ ops: [vel(`ip:${ip}`), vel(`s:anonymous:${ip}`)], now: TEST_NOW });
    }
    const r = await store.exec({ ops: [vel("s:alice"), vel(`ip:${ipOf(0)}`)], now: TEST_NOW });
    expect(r.results[0]).toMatchObject({ count: 6 }); // alice's count survived
    expect(r.results[1]).toMatchObject({ count: 1 }); // the oldest address key was evicted
  });

  it("sheds per-address keys first past the member cap", async () => {
    const store = createMemoryStore({ maxMembers: 50 });
    const member = (tag: string, m: string): StoreOp => ({
      op: "member",
      key: { tag, name: "devices" },
      member: m,
      max: 100,
      ttlMs: 3_600_000,
    });
    for (let i = 0; i < 10; i++) await store.exec({ ops: [member("s:alice", `d${i}`)], now: 1 });
    for (let i = 0; i < 200; i++) {
      await store.exec({ ops: [member(`ip:${ipOf(i)}`, "x")], now: 1 });
    }
    const r = await store.exec({ ops: [member("s:alice", "d0")], now: 1 });
    expect(r.results[0]).toEqual({ isNew: false, size: 10 });
  });
});

describe("a throttled caller stays throttled through a flood (pipeline)", () => {
  it("210k token-less Checks from distinct IPs do not reset a free-tier subject's velocity", async () => {
    const policy = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");
    const runtime = policySnapshotOf(
      policy,
      fakeIdentifier({ free: { sub: "u-free", tier: "free", org: "acme", amr: ["mfa"] } }),
    );
    // the default store, as `riskgate serve` builds it without Redis (200k keys)
    const pipeline = createPipeline({ store: createMemoryStore(), clock: () => TEST_NOW });
    const signed = () =>
      pipeline.evaluate(
        runtime,
        accessRequest({ headers: new Map([["authorization", "Bearer free"]]) }),
      );
    let last = await signed();
    for (let i = 0; i < 25 && last.verdict.kind !== "throttle"; i++) last = await signed();
    expect(last.verdict.kind).toBe("throttle");

    for (let i = 0; i < 210_000; i++) {
      const d = await pipeline.evaluate(runtime, accessRequest({ clientIp: ipOf(i + 1) }));
      if (i === 0) expect(d.verdict.reasons.map((r) => r.code)).toEqual(["identity.missing"]);
    }
    expect((await signed()).verdict.kind).toBe("throttle");
  }, 120_000);
});
