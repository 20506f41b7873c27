import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCheckRequest } from "../../src/cli/check.js";
import { createClient } from "../../src/cli/client.js";

/**
 * The README's walkthrough, as a new user runs it: the built `riskgate` command serves the demo
 * policy on embedded defaults, mints dev tokens and checks requests. Needs `npm run build`
 * (the npm test script builds first).
 */
const CLI = "dist/src/cli/main.js";
const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), "riskgate-cli-"));
const env = {
  ...process.env,
  RISKGATE_DEV_KEYS_DIR: join(work, "keys"),
  RISKGATE_LOG_LEVEL: "info",
  // not the default 9464: other servers on the machine may hold it, and a busy port is fatal
  RISKGATE_METRICS_ADDRESS: "127.0.0.1:0",
};

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("riskgate CLI on embedded defaults", () => {
  let server: ChildProcess;
  let address = "";
  let exited: Promise<number | null>;

  beforeAll(async () => {
    server = spawn(process.execPath, [CLI, "serve", "--dev", "--address", "127.0.0.1:0"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    exited = new Promise((resolve) => server.on("exit", (code) => resolve(code)));
    let out = "";
    address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
      server.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /"port":(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(`127.0.0.1:${m[1]}`);
        }
      });
    });
  });

  afterAll(async () => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });

  const token = async (...args: string[]) => {
    const r = await cli(["token", ...args]);
    expect(r.code).toBe(0);
    return r.stdout.trim();
  };
  const check = (...args: string[]) => cli(["check", "--address", address, ...args]);

  it("reports SERVING to `riskgate health`", async () => {
    const r = await cli(["health", "--address", address]);
    expect(r).toMatchObject({ code: 0, stdout: "SERVING\n" });
  });

  it("allows a pro user reading the API (exit 0)", async () => {
    const t = await token("--sub", "alice", "--tier", "pro", "--org", "acme", "--amr", "pwd,mfa");
    const r = await check("--token", t, "--path", "/v1/items");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("decision: allow");
    expect(r.stdout).toContain("header: x-riskgate-tier: pro");
  });

  it("challenges a password-only session on a sensitive route (exit 1)", async () => {
    const t = await token("--sub", "bob", "--tier", "enterprise", "--amr", "pwd");
    const r = await check("--token", t, "--path", "/admin/users");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("decision: challenge");
    expect(r.stdout).toContain("http status: 401");
    expect(r.stdout).toContain("insufficient_user_authentication");
  });

  it("denies a missing entitlement with 403 (exit 1)", async () => {
    const t = await token("--sub", "carol", "--tier", "free", "--amr", "mfa");
    const r = await check("--token", t, "--path", "/billing/invoices", "--json");
    expect(r.code).toBe(1);
    const view = JSON.parse(r.stdout) as { decision: string; httpStatus: number; body: string };
    expect(view).toMatchObject({ decision: "deny", httpStatus: 403 });
    expect(view.body).toContain("license.entitlement_missing");
  });

  it("throttles after the free tier's 20 requests a minute", async () => {
    const t = await token("--sub", "dave", "--tier", "free", "--amr", "mfa");
    // The 20 allowed requests go over one gRPC client (milliseconds each, where 20 CLI
    // processes take seconds on a busy machine), the 21st through the CLI. The window is exact,
    // so at whatever second of a minute this starts the 21st is throttled.
    const client = createClient(address);
    const request = buildCheckRequest({
      method: "GET",
      path: "/v1/items",
      host: "api.example.com",
      ip: "203.0.113.7",
      headers: {},
      token: t,
    });
    try {
      for (let i = 0; i < 20; i++) expect((await client.check(request)).status?.code).toBe(0);
    } finally {
      client.close();
    }
    const r = await check("--token", t, "--path", "/v1/items");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("decision: throttle");
    expect(r.stdout).toContain("http status: 429");
    // until the first of the 20 leaves the minute
    const retryAfter = Number(/header: retry-after: (\d+)/.exec(r.stdout)?.[1]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it("validates policy files", async () => {
    expect((await cli(["policy", "validate", "policies/demo.yaml"])).code).toBe(0);
    const bad = join(work, "bad.yaml");
    writeFileSync(
      bad,
      "version: 1\nidentity: { issuers: [a], audiences: [b] }\ntiers: { free: { risk: { challenge_at: 10, deny_at: 5, surprise: 1 } } }\n",
    );
    const r = await cli(["policy", "validate", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain("tiers.free.risk: unknown key(s): surprise");
  });

  it("refuses to start on an invalid policy, naming the problem (exit 2)", async () => {
    const bad = join(work, "bad2.yaml");
    writeFileSync(bad, "version: 2\n");
    const r = await cli(["serve", "--dev", "--policy", bad, "--address", "127.0.0.1:0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("RISKGATE_POLICY_INVALID");
    expect(r.stderr).toContain("version");
  });

  it("drains and exits 0 on SIGTERM", async () => {
    server.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect((await cli(["health", "--address", address])).code).toBe(1);
  });
});

describe("live policy reload of a running server", () => {
  it("follows file changes and SIGHUP, keeps the last good policy on an invalid file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-reload-"));
    const file = join(dir, "policy.yaml");
    const demo = readFileSync("policies/demo.yaml", "utf8");
    writeFileSync(file, demo);
    const server = spawn(
      process.execPath,
      [CLI, "serve", "--dev", "--policy", file, "--address", "127.0.0.1:0"],
      {
        env,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    server.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    try {
      const deadline = Date.now() + 60_000;
      while (!/"port":(\d+)/.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const address = `127.0.0.1:${/"port":(\d+)/.exec(out)?.[1]}`;
      const t = (
        await cli(["token", "--policy", file, "--sub", "rita", "--tier", "free", "--amr", "mfa"])
      ).stdout.trim();
      const decide = async () =>
        (
          JSON.parse(
            (
              await cli([
                "check",
                "--address",
                address,
                "--token",
                t,
                "--path",
                "/v1/items",
                "--json",
              ])
            ).stdout,
          ) as {
            decision: string;
          }
        ).decision;
      // readiness waits, as long as a reload takes on a busy machine (the test's timeout
      // bounds them): each CLI call alone may take seconds there
      const waitFor = async (want: string) => {
        let got = await decide();
        while (got !== want) {
          await new Promise((r) => setTimeout(r, 100));
          got = await decide();
        }
        return got;
      };
      const logged = async (line: string) => {
        while (!out.includes(line)) await new Promise((r) => setTimeout(r, 50));
      };
      expect(await decide()).toBe("allow");

      // the free tier loses api.read: the file watcher picks the change up
      writeFileSync(file, demo.replace("    entitlements: [api.read]\n", "    entitlements: []\n"));
      expect(await waitFor("deny")).toBe("deny");

      // an invalid file keeps the last good policy, even when forced with SIGHUP
      writeFileSync(file, "version: 1\ntiers: {}\n");
      server.kill("SIGHUP");
      await logged("policy reload failed; keeping the last good policy");
      expect(await decide()).toBe("deny");

      // SIGHUP applies a fixed file at once
      writeFileSync(file, demo);
      server.kill("SIGHUP");
      expect(await waitFor("allow")).toBe("allow");
    } finally {
      server.kill("SIGTERM");
    }
  }, 180_000);
});
