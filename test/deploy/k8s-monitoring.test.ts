import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type K8sObject, kubectlAvailable, render } from "./k8s-objects.js";
import { createK8sSchemas } from "./k8s-schema.js";

/**
 * The k8s/monitoring component rendered onto the prod overlay with the real kustomize: the
 * overlay's objects still pass the Kubernetes schemas, and the PrometheusRule it adds lives in
 * riskgate's namespace and carries exactly the shipped alerting rules (alerts/riskgate.rules.yml,
 * which promtool checks and tests in test/unit/alert-rules.test.ts).
 */

const kubectl = kubectlAvailable();

describe.runIf(kubectl)("monitoring: the PrometheusRule component", () => {
  let objects: K8sObject[];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "rg-monitoring-"));
    writeFileSync(
      join(dir, "kustomization.yaml"),
      `resources: [${relative(dir, resolve("k8s/overlays/prod"))}]\ncomponents: [${relative(dir, resolve("k8s/monitoring"))}]\n`,
    );
    objects = render(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("renders onto the prod overlay, which still validates", async () => {
    const schemas = createK8sSchemas();
    const core = objects.filter((o) => o.kind !== "PrometheusRule");
    expect(core.length).toBeGreaterThan(5);
    for (const o of core)
      expect(await schemas.check(o), `${o.kind}/${o.metadata.name}`).toEqual([]);
  });

  it("adds one PrometheusRule in riskgate's namespace with the shipped rules", () => {
    const rules = objects.filter((o) => o.kind === "PrometheusRule");
    expect(rules).toHaveLength(1);
    const rule = rules[0] as K8sObject;
    expect(rule.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(rule.metadata).toMatchObject({ name: "riskgate", namespace: "riskgate" });
    // the operator's PrometheusRule spec is the rules file's format: groups, and nothing else
    expect(rule.spec).toEqual(parse(readFileSync("alerts/riskgate.rules.yml", "utf8")));
  });
});
