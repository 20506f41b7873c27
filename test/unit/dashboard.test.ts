import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/telemetry/metrics.js";

describe("Grafana dashboard", () => {
  it("only queries metrics riskgate exports, and covers each of them", async () => {
    const dashboard = readFileSync("dashboards/riskgate.json", "utf8");
    const used = new Set(
      [...dashboard.matchAll(/riskgate_[a-z_]+/g)].map((m) =>
        m[0].replace(/_(bucket|count|sum)$/, ""),
      ),
    );
    const exported = new Set(
      (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name),
    );
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    expect([...exported].filter((name) => !used.has(name))).toEqual([]);
    const readme = readFileSync("README.md", "utf8");
    for (const name of exported) expect(readme).toContain(name);
  });
});
