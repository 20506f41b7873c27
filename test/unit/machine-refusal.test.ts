import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createPipeline, type Decision } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest } from "../../src/access/request.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import { createMetrics } from "../../src/telemetry/metrics.js";
import { accessRequest, TEST_NOW } from "../helpers/access-request.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";
import { codes } from "../helpers/pipeline-check.js";

// A machine client cannot answer a challenge (no one can log in again for a client-credentials
// grant, nor pass a page). Where a person would be challenged it is throttled, or denied when
// the route asks for a recent login; never sticky. Whole pipeline, memory state, fixed clock.

const demo = readFileSync("policies/demo.yaml", "utf8");
// high-sensitivity routes weigh 45 points: in the challenge band of every tier (40..95)
const policyText = demo.replace(
  "points: { low: 0, medium: 5, high: 15 }",
  "points: { low: 0, medium: 5, high: 45 }",
);
const nowS = TEST_NOW / 1000;
const claims = {
  // Okta-style client credentials: the subject is the client
  svc: { sub: "0oa-svc", cid: "0oa-svc", tier: "enterprise", org: "big" },
  // Keycloak's service account: sub is the hidden service-account user, acr "1"
  kc: {
    sub: "5d1c-uuid",
    azp: "nightly",
    client_id: "nightly",
    acr: "1",
    preferred_username: "service-account-nightly",
    tier: "enterprise",
    org: "big",
  },
  person: { sub: "u-1", tier: "enterprise", org: "big", amr: ["mfa"], auth_time: nowS - 60 },
};

function setup(text = policyText) {
  const runtime = policySnapshotOf(parsePolicy(text, "t.yaml"), fakeIdentifier(claims));
  const pipeline = createPipeline({ store: createMemoryStore(), clock: () => TEST_NOW });
  let n = 0;
  return (token: string, over: Partial<AccessRequest> = {}): Promise<Decision> => {
    const headers = new Map([["authorization", `Bearer ${token}`]]);
    return pipeline.evaluate(runtime, accessRequest({ id: `r${++n}`, ...over, headers }));
  };
}

describe("a machine client never gets a challenge it cannot answer", () => {
  it("is throttled with Retry-After where a person is challenged, and says why", async () => {
    const check = setup();
    const person = await check("person", { path: "/billing/invoices" });
    expect(person.verdict.kind).toBe("challenge");
    for (const token of ["svc", "kc"]) {
      const { verdict, clientClass } = await check(token, { path: "/billing/invoices" });
      expect(clientClass).toBe("machine");
      expect(verdict).toMatchObject({ kind: "throttle", retryAfterSeconds: 60, score: 45 });
      expect(codes(verdict)).toEqual(["request.sensitivity", "risk.no_challenge"]);
    }
  });

  it("takes its Retry-After from decisions.machine", async () => {
    const check = setup(
      policyText.replace(
        "  subject_header: true\n",
        "  subject_header: true\n  machine: { retry_after_seconds: 300 }\n",
      ),
    );
    const { verdict } = await check("svc", { path: "/billing/invoices" });
    expect(verdict).toMatchObject({ kind: "throttle", retryAfterSeconds: 300 });
  });

  it("is throttled where a rule would challenge", async () => {
    const check = setup(
      policyText.replace(
        "\nrules:\n",
        "\nrules:\n  - name: writes-step-up\n    when: { methods: [DELETE] }\n    action: challenge\n",
      ),
    );
    expect((await check("person", { method: "DELETE" })).verdict.kind).toBe("challenge");
    const { verdict } = await check("svc", { method: "DELETE" });
    expect(verdict.kind).toBe("throttle");
    expect(codes(verdict)).toEqual(["rule.writes-step-up", "risk.no_challenge"]);
  });

  it("is denied with its reasons where the route asks for a recent login", async () => {
    const check = setup();
    const { verdict } = await check("svc", { path: "/admin/users" });
    expect(verdict).toMatchObject({ kind: "deny", cause: "risk" });
    expect(codes(verdict)).toContain("auth.max_age");
    expect(codes(verdict).at(-1)).toBe("risk.no_challenge");
  });

  it("never carries risk.sticky, however often it was refused", async () => {
    const check = setup();
    for (let i = 0; i < 5; i++) {
      const { verdict } = await check("svc", { path: "/billing/invoices" });
      expect(verdict.kind).toBe("throttle");
    }
    const later = await check("svc", { path: "/v1/items" });
    expect(later.verdict.kind).toBe("allow");
    expect(codes(later.verdict)).not.toContain("risk.sticky");
    // a person refused the same way carries it on the next request
    await check("person", { path: "/billing/invoices" });
    expect(codes((await check("person", { path: "/v1/items" })).verdict)).toContain("risk.sticky");
  });

  it("counts decisions by client class in the metrics", async () => {
    const check = setup();
    const metrics = createMetrics();
    for (const token of ["svc", "svc", "person"]) {
      const decision = await check(token, { path: "/billing/invoices" });
      metrics.decision({ decision, req: undefined, traceHeader: () => undefined, durationNs: 1n });
    }
    const text = await metrics.registry.getSingleMetricAsString(
      "riskgate_client_class_decisions_total",
    );
    expect(text).toContain(
      'riskgate_client_class_decisions_total{client_class="machine",enforced="throttle"} 2',
    );
    expect(text).toContain(
      'riskgate_client_class_decisions_total{client_class="browser",enforced="challenge"} 1',
    );
  });
});
