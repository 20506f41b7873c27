import type { ChildProcess } from "node:child_process";
import { connect, createServer } from "node:net";

/** A free loopback TCP port (bound then released), for servers the tests and benches start. */
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

/**
 * Resolves once a child process listens on a loopback port (15 s at most); rejects early when
 * the process exits, with its output, so a proxy that refused its config says why.
 */
export async function waitForPort(
  port: number,
  proc: ChildProcess,
  name: string,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${port}: ${log()}`);
}
