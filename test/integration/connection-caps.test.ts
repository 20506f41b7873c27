import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { probeHealth } from "../../src/cli/client.js";
import { ServingStatus } from "../../src/transport/health.js";
import { freePort } from "../helpers/free-port.js";

/**
 * Idle HTTP clients cannot take the file descriptors the gRPC listener needs: the built CLI as a
 * child process with `nofile` 1,024 (prlimit), 1,200 idle connections to its HTTP listener, then
 * a new gRPC connection. Needs `npm run build`.
 */
const CLI = "dist/src/cli/main.js";
const IDLE = 1200;

const children: ChildProcess[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** Resolves once the server says SERVING, or rejects when it exits first. */
async function serving(child: ChildProcess, address: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}`);
    const status = await probeHealth(address, 1000).catch(() => undefined);
    if (status === ServingStatus.SERVING) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("server never SERVING");
}

/** Opens `n` idle connections; resolves once each has connected, or closed, or failed. */
function idleConnections(port: number, n: number): Promise<void> {
  let settled = 0;
  return new Promise((resolve) => {
    const done = () => ++settled === n && resolve();
    for (let i = 0; i < n; i++) {
      const socket = connect(port, "127.0.0.1");
      sockets.push(socket);
      let counted = false;
      const once = () => {
        if (counted) return;
        counted = true;
        done();
      };
      socket.once("connect", once);
      socket.once("close", once);
      socket.on("error", () => {});
      // a connection the kernel never completes (its backlog full) counts as settled too
      socket.setTimeout(5000, () => {
        once();
        socket.destroy();
      });
    }
  });
}

describe("listener connection caps", () => {
  it("1,200 idle HTTP connections with nofile 1,024 leave room for new gRPC connections", async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const child = spawn(
      "prlimit",
      ["--nofile=1024:1024", process.execPath, CLI, "serve", "--dev"],
      {
        env: {
          ...process.env,
          RISKGATE_DEV_KEYS_DIR: join(mkdtempSync(join(tmpdir(), "riskgate-caps-")), "keys"),
          RISKGATE_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
          RISKGATE_HTTP_ADDRESS: `127.0.0.1:${httpPort}`,
          RISKGATE_METRICS_ADDRESS: "off",
          RISKGATE_GEO: "off",
          RISKGATE_LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    children.push(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    await serving(child, `127.0.0.1:${grpcPort}`);

    await idleConnections(httpPort, IDLE);
    // a new gRPC connection (probeHealth dials its own) is accepted and answered
    expect(await probeHealth(`127.0.0.1:${grpcPort}`, 5000), stderr).toBe(ServingStatus.SERVING);
    // and the HTTP listener still serves within its cap
    const open = sockets.filter((s) => !s.destroyed).length;
    expect(open).toBeLessThanOrEqual(512);
    expect(child.exitCode).toBeNull();
  }, 60_000);
});
