import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildCheckRequest } from "../../src/cli/check.js";
import { createClient, probeHealth } from "../../src/cli/client.js";
import { ServingStatus } from "../../src/transport/health.js";
import { freePort } from "../helpers/free-port.js";

/**
 * Graceful drain, over the wire against the built CLI (needs `npm run build`): on SIGTERM
 * health turns NOT_SERVING while Checks are still answered for RISKGATE_DRAIN_DELAY_MS; only
 * then are connections refused, and the process exits 0. A health poller that dials afresh
 * each time (as Docker's HEALTHCHECK or a load balancer does) sees NOT_SERVING first.
 */
const CLI = "dist/src/cli/main.js";
const DRAIN_MS = 1500;

describe("draining on SIGTERM", () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child?.exitCode === null) child.kill("SIGKILL");
  });

  it("reports NOT_SERVING and keeps answering Checks for the drain delay, then exits 0", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    child = spawn(process.execPath, [CLI, "serve", "--dev", "--address", address], {
      env: {
        ...process.env,
        RISKGATE_DEV_KEYS_DIR: join(mkdtempSync(join(tmpdir(), "riskgate-drain-")), "keys"),
        RISKGATE_GEO: "off",
        RISKGATE_METRICS_ADDRESS: "off",
        RISKGATE_AUDIT: "false",
        RISKGATE_LOG_LEVEL: "warn",
        RISKGATE_DRAIN_DELAY_MS: String(DRAIN_MS),
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child?.on("exit", resolve));

    const probe = () => probeHealth(address, 300);
    const deadline = Date.now() + 30_000;
    while ((await probe()) !== ServingStatus.SERVING) {
      if (Date.now() > deadline) throw new Error("server did not start");
      await new Promise((r) => setTimeout(r, 50));
    }

    // steady load: 4 Checks in flight at all times on one channel, as Envoy keeps one
    const client = createClient(address, 2000);
    const request = buildCheckRequest({
      method: "GET",
      path: "/v1/items",
      host: "api.example.com",
      ip: "203.0.113.7",
      headers: {},
    });
    const checks: { sentAt: number; answered: boolean }[] = [];
    let loading = true;
    const loop = async () => {
      while (loading) {
        const entry = { sentAt: Date.now(), answered: false };
        checks.push(entry);
        try {
          await client.check(request);
          entry.answered = true;
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    const loops = Array.from({ length: 4 }, loop);

    const polls: { at: number; status: number | "refused" }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const status = await probe();
        polls.push({ at: Date.now(), status });
        if (status === "refused") break;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    await new Promise((r) => setTimeout(r, 300));
    const termAt = Date.now();
    child.kill("SIGTERM");
    const code = await exited;
    polling = false;
    loading = false;
    await poller;
    await Promise.all(loops);
    client.close();

    expect(code).toBe(0);
    const notServing = polls.find((p) => p.at > termAt && p.status === ServingStatus.NOT_SERVING);
    const refused = polls.find((p) => p.status === "refused");
    expect(notServing, JSON.stringify(polls.slice(-5))).toBeDefined();
    expect(refused).toBeDefined();
    expect((notServing?.at ?? 0) - termAt).toBeLessThan(300);
    expect(refused?.at ?? 0).toBeGreaterThan(notServing?.at ?? Number.POSITIVE_INFINITY);
    expect((refused?.at ?? 0) - termAt).toBeGreaterThanOrEqual(DRAIN_MS - 100);
    // every Check sent during the delay was answered
    const during = checks.filter((c) => c.sentAt > termAt && c.sentAt < termAt + DRAIN_MS - 200);
    expect(during.length).toBeGreaterThan(20);
    expect(during.filter((c) => !c.answered)).toEqual([]);
  }, 60_000);
});
