import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createPipeline, type DecisionTrace } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest } from "../../src/access/request.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { accessRequest } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const demo = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml");
const runtime = policySnapshotOf(
  demo,
  fakeIdentifier({
    pro: { sub: "u-pro", tier: "pro", org: "acme", amr: ["pwd"], auth_time: NOW / 1000 - 60 },
  }),
);

const request = (over: Partial<AccessRequest> = {}) =>
  accessRequest({ headers: new Map([["authorization", "Bearer pro"]]), ...over });

/** A trace that writes down which stage reported, in order. */
function recorder(): { trace: DecisionTrace; stages: string[] } {
  const stages: string[] = [];
  return {
    stages,
    trace: {
      route: (r) => stages.push(`route ${r.name}`),
      identity: (o, c) => stages.push(`identity ${o.kind} ${c?.subject ?? "-"}`),
      license: (l) => stages.push(`license ${l.ok ? l.tierName : l.reason.code}`),
      context: (ctx) => stages.push(`context ${ctx.tierName}`),
      signal: (name, ops, readings, finding) =>
        stages.push(
          `signal ${name} ops=${ops.length} readings=${readings?.length ?? "-"} points=${finding?.reasons.reduce((a, r) => a + r.points, 0) ?? "-"}`,
        ),
    },
  };
}

describe("the pipeline's explain hook", () => {
  it("reports every stage in order, with each signal's ops, readings and points", async () => {
    const pipeline = createPipeline({ store: createMemoryStore(), clock: () => NOW });
    const { trace, stages } = recorder();
    const decision = await pipeline.evaluate(runtime, request(), trace);
    expect(decision.verdict.kind).toBe("allow");
    expect(stages.slice(0, 4)).toEqual([
      "route api-read",
      "identity verified u-pro",
      "license pro",
      "context pro",
    ]);
    expect(stages).toContain("signal velocity.subject ops=1 readings=1 points=0");
    expect(stages).toContain("signal auth.weak ops=0 readings=0 points=10");
    expect(stages.filter((s) => s.startsWith("signal "))).toHaveLength(stages.length - 4);
    // the caller and device the audit line records come with the decision
    expect(decision.caller).toMatchObject({ subject: "u-pro", tier: "pro", amr: ["pwd"] });
  });

  it("changes nothing about the decision", async () => {
    const traced = createPipeline({ store: createMemoryStore(), clock: () => NOW });
    const plain = createPipeline({ store: createMemoryStore(), clock: () => NOW });
    for (let i = 0; i < 30; i++) {
      const req = request({ id: `r${i}`, receivedAt: NOW + i * 100 });
      const a = await traced.evaluate(runtime, req, recorder().trace);
      const b = await plain.evaluate(runtime, req);
      expect(a.verdict).toEqual(b.verdict);
    }
  });

  it("stops where the decision stops, and reports signals skipped by a store outage", async () => {
    const pipeline = createPipeline({ store: createMemoryStore(), clock: () => NOW });
    const denied = recorder();
    await pipeline.evaluate(runtime, request({ path: "/billing/x" }), denied.trace);
    expect(denied.stages).toEqual([
      "route billing",
      "identity verified u-pro",
      "license license.entitlement_missing",
    ]);
    const down: Store = {
      kind: "memory",
      exec: () => Promise.reject(new Error("down")),
      close: async () => {},
    };
    const open = parsePolicy(
      readFileSync("policies/demo.yaml", "utf8").replace("mode: closed", "mode: open"),
      "open.yaml",
    );
    const outage = recorder();
    await createPipeline({ store: down, clock: () => NOW }).evaluate(
      { ...runtime, policy: open },
      request(),
      outage.trace,
    );
    expect(outage.stages).toContain("signal velocity.subject ops=1 readings=- points=-");
  });

  it("with the time budget off, a slow stage is waited for instead of failing", async () => {
    // with the budget: a store that never answers, so the budget fires however late its timer
    // runs (a store answering after 150 ms raced the 100 ms budget on a loaded machine)
    const stuck: Store = {
      kind: "memory",
      exec: () => new Promise(() => {}),
      close: async () => {},
    };
    const budgeted = await createPipeline({ store: stuck, clock: () => NOW }).evaluate(
      runtime,
      request(),
    );
    expect(budgeted.verdict.reasons.map((r) => r.code)).toContain("failure.budget");
    // without it: a store slower than the budget is waited for
    const slow: Store = {
      kind: "memory",
      exec: (batch) =>
        new Promise((resolve) => setTimeout(() => resolve(createMemoryStore().exec(batch)), 150)),
      close: async () => {},
    };
    const replayed = await createPipeline({
      store: slow,
      clock: () => NOW,
      timeBudget: false,
    }).evaluate(runtime, request());
    expect(replayed.verdict.kind).toBe("allow");
  });
});
