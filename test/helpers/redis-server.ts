import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Real redis-server processes for integration tests, on free loopback ports, in temp dirs,
 * persisting nothing. Missing redis-server: a hard failure under CI=true, a visible skip elsewhere.
 */
export function redisAvailable(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI === "true") {
      throw new Error(
        "redis-server is not on the PATH; the Redis tests need it (Debian: apt-get install redis-server)",
      );
    }
    console.warn("SKIPPED: redis-server is not on the PATH; Redis integration tests are skipped");
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  /** Starts again on the same port (after stop). */
  restart(): Promise<void>;
}

async function waitForPing(port: number, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      const out = execFileSync("redis-cli", ["-p", String(port), "ping"], { encoding: "utf8" });
      if (out.trim() === "PONG") return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`redis-server on ${port} did not answer PING`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts one redis-server on a free port. */
export async function startRedis(extraArgs: string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "riskgate-redis-"));
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        ...extraArgs,
      ],
      { stdio: "ignore" },
    );
    await waitForPing(port);
  };
  const stop = async () => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

export interface RedisCluster {
  readonly nodes: string[];
  stop(): Promise<void>;
}

/** Starts a 3-master Redis Cluster (no replicas) with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const members: RedisProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-cluster-"));
    members.push(
      await startRedis([
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, "nodes.conf"),
        "--cluster-node-timeout",
        "2000",
      ]),
    );
  }
  const nodes = members.map((m) => `127.0.0.1:${m.port}`);
  execFileSync("redis-cli", ["--cluster", "create", ...nodes, "--cluster-yes"], {
    stdio: "ignore",
  });
  // wait until every node agrees the cluster is ok
  const until = Date.now() + 15_000;
  for (const m of members) {
    for (;;) {
      const info = execFileSync("redis-cli", ["-p", String(m.port), "cluster", "info"], {
        encoding: "utf8",
      });
      if (info.includes("cluster_state:ok")) break;
      if (Date.now() > until) throw new Error("redis cluster did not become ok");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    nodes,
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
}
