import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect, type Socket } from "node:net";

const ECHO_SERVER =
  "require('net').createServer((s) => s.pipe(s)).listen(0, '127.0.0.1', function () { console.log(this.address().port) })";

/**
 * A TCP echo server in another process (as Redis is) and a connected client: `ask()` writes a
 * byte and resolves when the echo is read, which Node does in the poll phase, like a Redis reply.
 */
export async function echoPair(): Promise<{
  ask(): Promise<void>;
  close(): Promise<void>;
}> {
  const server = spawn(process.execPath, ["-e", ECHO_SERVER], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(server.stdout, "data")) as [Buffer];
  const client: Socket = connect(Number(line.toString().trim()), "127.0.0.1");
  client.setNoDelay(true);
  await once(client, "connect");
  return {
    ask: () =>
      new Promise<void>((resolve) => {
        client.once("data", () => resolve());
        client.write("x");
      }),
    close: async () => {
      client.destroy();
      server.kill();
      await once(server, "exit");
    },
  };
}

/** Keeps the event loop busy for `ms`, as a burst of Checks or a GC pause does. */
export function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}
