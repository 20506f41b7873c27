import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "./free-port.js";

/**
 * Real redis-server processes for integration tests: loopback only, free ports, temp dirs,
 * nothing persisted, every wait bounded. Missing redis-server: a hard failure under CI=true, a
 * visible skip elsewhere.
 */

const run = promisify(execFile);

/** True when redis-server and redis-cli are on the PATH; throws under CI=true when not. */
export function redisAvailable(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    execFileSync("redis-cli", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    const message =
      "redis-server/redis-cli are not on the PATH; the Redis integration tests need them " +
      "(Debian/Ubuntu: apt-get install redis-server)";
    if (process.env.CI === "true") throw new Error(message);
    console.warn(`SKIPPED: ${message}`);
    return false;
  }
}

export interface TlsFiles {
  /** Temp dir holding the files; the caller removes it. */
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM of the CA, for the client. */
  readonly ca: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 and localhost (openssl). */
export async function makeTlsFiles(): Promise<TlsFiles> {
  const dir = mkdtempSync(join(tmpdir(), "riskgate-tls-"));
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run("openssl", args, { timeout: 30_000 });
  await openssl(
    ...[
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=riskgate-test-ca",
    ],
    ...["-keyout", f("ca.key"), "-out", f("ca.crt")],
  );
  await openssl(
    ...["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"],
    ...["-keyout", f("server.key"), "-out", f("server.csr")],
  );
  const ext = f("ext.cnf");
  await run("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > '${ext}'`]);
  await openssl(
    ...["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key")],
    ...["-CAcreateserial", "-days", "1", "-extfile", ext, "-out", f("server.crt")],
  );
  return {
    dir,
    caFile: f("ca.crt"),
    certFile: f("server.crt"),
    keyFile: f("server.key"),
    ca: readFileSync(f("ca.crt"), "utf8"),
  };
}

export interface StartOptions {
  /** A fixed port (e.g. one a client already points at); default a free one. */
  readonly port?: number;
  /** requirepass. */
  readonly password?: string;
  /** Serve TLS only (no plaintext port), with these files. */
  readonly tls?: TlsFiles;
  readonly extraArgs?: readonly string[];
}

export interface RedisProcess {
  readonly port: number;
  /** redis:// (or rediss://) URL, password included. */
  readonly url: string;
  /** SIGKILL: the server vanishes as in a crash (its temp dir goes too). */
  stop(): Promise<void>;
  /** Starts again on the same port (after stop), with an empty dataset (cluster state too). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that accepts nothing and answers nothing for a while. */
  pause(): void;
  resume(): void;
  /** The end of the server: stop, for readable teardown. */
  dispose(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // a test run that exits without stopping its servers leaves none behind
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
}

/** One PING over a fresh connection; true on +PONG (or NOAUTH: up, wants a password). */
function pingOnce(port: number, tls?: TlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: Socket;
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    const onConnect = () => socket.write("PING\r\n");
    socket = tls
      ? tlsConnect({ host: "127.0.0.1", port, ca: tls.ca, servername: "localhost" }, onConnect)
      : netConnect({ host: "127.0.0.1", port }, onConnect);
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("data", (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())));
  });
}

async function waitForPing(
  port: number,
  child: ChildProcess,
  output: () => string,
  tls?: TlsFiles,
): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on ${port} exited at start:\n${output()}`);
    }
    if (await pingOnce(port, tls)) return;
    if (Date.now() > until) throw new Error(`redis-server on ${port} did not answer PING in 10 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts one redis-server on loopback (a free port unless given), persisting nothing. */
export async function startRedis(options: StartOptions = {}): Promise<RedisProcess> {
  const port = options.port ?? (await freePort());
  const args = (dir: string) => [
    ...["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    ...(options.tls
      ? [
          ...["--port", "0", "--tls-port", String(port), "--tls-auth-clients", "no"],
          ...["--tls-cert-file", options.tls.certFile, "--tls-key-file", options.tls.keyFile],
          ...["--tls-ca-cert-file", options.tls.caFile],
        ]
      : ["--port", String(port)]),
    ...(options.password === undefined ? [] : ["--requirepass", options.password]),
    ...(options.extraArgs ?? []),
  ];
  // each run has its own temp dir, removed when it stops: nothing outlives its server
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  const launch = async () => {
    let out = "";
    const d = mkdtempSync(join(tmpdir(), "riskgate-redis-"));
    dir = d;
    const c = spawn("redis-server", args(d), { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (data: Buffer) => {
      out = (out + data.toString()).slice(-4000);
    };
    c.stdout?.on("data", keep);
    c.stderr?.on("data", keep);
    track(c);
    child = c;
    await waitForPing(port, c, () => out, options.tls);
  };
  const stop = async () => {
    const c = child;
    if (c !== undefined && c.exitCode === null && c.signalCode === null) {
      await new Promise<void>((resolve) => {
        c.once("exit", () => resolve());
        c.kill("SIGCONT"); // a paused server dies of SIGKILL too; no reason to leave it stopped
        c.kill("SIGKILL");
      });
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  };
  await launch();
  const auth = options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    url: `${options.tls ? "rediss" : "redis"}://${auth}127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    dispose: stop,
  };
}

export interface RedisCluster {
  /** `127.0.0.1:port` of each master. */
  readonly nodes: string[];
  readonly members: readonly RedisProcess[];
  /** The port of the master serving a key (its slot, from CLUSTER SLOTS). */
  portOf(key: string): Promise<number>;
  stop(): Promise<void>;
}

const cli = async (port: number, ...args: string[]) =>
  (await run("redis-cli", ["-p", String(port), ...args], { timeout: 10_000 })).stdout;

/** Starts a 3-master Redis Cluster (no replicas) with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const members: RedisProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      members.push(
        await startRedis({
          extraArgs: [
            ...["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
            // relative to --dir, which is the server's own temp dir
            ...["--cluster-config-file", "nodes.conf"],
          ],
        }),
      );
    }
    const nodes = members.map((m) => `127.0.0.1:${m.port}`);
    await run("redis-cli", ["--cluster", "create", ...nodes, "--cluster-yes"], {
      timeout: 30_000,
    });
    // every node must agree the cluster is ok before a client asks it for slots
    const until = Date.now() + 15_000;
    for (const m of members) {
      while (!(await cli(m.port, "cluster", "info")).includes("cluster_state:ok")) {
        if (Date.now() > until) throw new Error("redis cluster did not become ok in 15 s");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const admin = new Redis({ host: "127.0.0.1", port: (members[0] as RedisProcess).port });
    const ranges = (await admin.cluster("SLOTS")).map(([from, to, master]) => ({
      from,
      to,
      port: master?.[1] ?? 0,
    }));
    return {
      nodes,
      members,
      async portOf(key) {
        const slot = Number(await admin.cluster("KEYSLOT", key));
        const range = ranges.find((r) => slot >= r.from && slot <= r.to);
        if (range === undefined) throw new Error(`no master serves slot ${slot}`);
        return range.port;
      },
      async stop() {
        admin.disconnect();
        await Promise.all(members.map((m) => m.dispose()));
      },
    };
  } catch (err) {
    await Promise.all(members.map((m) => m.dispose()));
    throw err;
  }
}
