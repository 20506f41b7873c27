/**
 * The HTTP stack's physical limit: a node:http server that answers every request 200 at once,
 * as riskgate's forward-auth listener would answer an allow. Usage: node dist/bench/noop-http-server.js PORT
 */
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { "content-type": "text/plain", "content-length": "3" }).end("ok\n");
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
