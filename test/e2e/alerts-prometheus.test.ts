import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { freePort, waitForPort } from "../helpers/free-port.js";

/**
 * The shipped alerting rules in a real Prometheus (Debian's `prometheus`), on loopback with its
 * own data folder, scraping a real `riskgate serve`: a policy reload fails, and Prometheus
 * reports RiskgatePolicyReloadFailed firing. Under CI=true a missing Prometheus fails the run.
 */

const CLI = "dist/src/cli/main.js";

function findPrometheus(): string | undefined {
  try {
    execFileSync("prometheus", ["--version"], { stdio: "ignore", timeout: 10_000 });
    return "prometheus";
  } catch {
    const message =
      "prometheus is not installed; the alerting e2e test needs it (Debian: apt-get install prometheus)";
    if (process.env.CI === "true") throw new Error(message);
    console.warn(`SKIPPED: ${message}`);
    return undefined;
  }
}

const PROMETHEUS = findPrometheus();

interface Alert {
  labels: { alertname: string };
  state: string;
}

/** Polls `probe` until it returns a value, every 250 ms, for at most `seconds`. */
async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Collects a child's output, for the error a failed start reports. */
function output(child: ChildProcess): () => string {
  let text = "";
  const add = (c: Buffer) => {
    text = (text + c.toString()).slice(-4000);
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  return () => text;
}

describe.skipIf(PROMETHEUS === undefined)("alerting rules in a real Prometheus", () => {
  const dir = mkdtempSync(join(tmpdir(), "riskgate-alerts-"));
  const policyFile = join(dir, "policy.yaml");
  const children: ChildProcess[] = [];
  let riskgate: ChildProcess;
  let prometheusUrl = "";

  beforeAll(async () => {
    writeFileSync(policyFile, readFileSync("policies/demo.yaml", "utf8"));
    const [grpc, metrics, web] = [await freePort(), await freePort(), await freePort()];
    riskgate = spawn(process.execPath, [CLI, "serve", "--dev"], {
      env: {
        ...process.env,
        RISKGATE_POLICY: policyFile,
        RISKGATE_GRPC_ADDRESS: `127.0.0.1:${grpc}`,
        RISKGATE_METRICS_ADDRESS: `127.0.0.1:${metrics}`,
        RISKGATE_HTTP_ADDRESS: "off",
        RISKGATE_DEV_KEYS_DIR: join(dir, "keys"),
        RISKGATE_GEO: "off",
        RISKGATE_AUDIT: "false",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(riskgate);
    await waitForPort(metrics, riskgate, "riskgate", output(riskgate));

    // the shipped config, pointed at this riskgate, scraping and evaluating every second
    copyFileSync("alerts/riskgate.rules.yml", join(dir, "riskgate.rules.yml"));
    const config = parse(readFileSync("alerts/prometheus.yml", "utf8"));
    config.global = { scrape_interval: "1s", evaluation_interval: "1s" };
    config.scrape_configs[0].static_configs = [{ targets: [`127.0.0.1:${metrics}`] }];
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    const prometheus = spawn(
      PROMETHEUS as string,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--storage.tsdb.retention.time=1h`,
        `--web.listen-address=127.0.0.1:${web}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(prometheus);
    await waitForPort(web, prometheus, "prometheus", output(prometheus));
    prometheusUrl = `http://127.0.0.1:${web}`;
  }, 60_000);

  afterAll(async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const alerts = async (): Promise<Alert[]> => {
    const res = await fetch(`${prometheusUrl}/api/v1/alerts`);
    return ((await res.json()) as { data: { alerts: Alert[] } }).data.alerts;
  };

  it("fires RiskgatePolicyReloadFailed when a reload fails", async () => {
    // scraped, and the rules evaluated once, with nothing firing
    await until("riskgate scraped", 60, async () => {
      const res = await fetch(`${prometheusUrl}/api/v1/query?query=up{job="riskgate"}`);
      const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
      return body.data.result[0]?.value[1] === "1" ? true : undefined;
    });
    await until("the rules evaluated", 60, async () => {
      const res = await fetch(`${prometheusUrl}/api/v1/rules`);
      const body = (await res.json()) as { data: { groups: { lastEvaluation: string }[] } };
      const last = body.data.groups[0]?.lastEvaluation ?? "0001";
      return last.startsWith("0001") ? undefined : true;
    });
    expect(await alerts()).toEqual([]);

    writeFileSync(policyFile, "version: 1\nnot_a_policy_key: true\n");
    riskgate.kill("SIGHUP");
    const fired = await until("the alert firing", 90, async () => {
      const found = (await alerts()).find(
        (a) => a.labels.alertname === "RiskgatePolicyReloadFailed" && a.state === "firing",
      );
      return found;
    });
    expect(fired.labels).toMatchObject({ job: "riskgate", severity: "warning" });
    // riskgate still serves the last good policy
    expect(riskgate.exitCode).toBeNull();
  }, 180_000);
});
