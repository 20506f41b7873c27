/**
 * The stack's physical limit: an ext_authz server on the same grpc-js + proto-loader stack that
 * answers OK at once. Usage: node dist/bench/noop-server.js PORT [WORKERS]
 *
 * With WORKERS > 1 it runs as riskgate's `--workers` does: a node:cluster primary forks that
 * many processes which all bind the same address (the primary hands accepted connections to
 * them in turn), and prints "listening PORT" once every worker is bound.
 */
import cluster from "node:cluster";
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../src/transport/protos.js";

const port = Number(process.argv[2] ?? 0);
const workers = Number(process.argv[3] ?? 1);

function serve(): void {
  const server = new grpc.Server();
  server.addService(loadProtos().authorization.service, {
    Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, { status: { code: 0 }, ok_response: {} });
    },
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
    if (err) throw err;
    if (cluster.isWorker) process.send?.({ bound });
    else process.stdout.write(`listening ${bound}\n`);
  });
  process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
}

if (workers > 1 && cluster.isPrimary) {
  // every worker reports the one shared port; print it once all have bound
  const bound: number[] = [];
  cluster.on("message", (_worker, message: { bound?: number }) => {
    if (typeof message.bound !== "number") return;
    bound.push(message.bound);
    if (bound.length === workers) {
      if (new Set(bound).size !== 1) throw new Error(`workers bound different ports: ${bound}`);
      process.stdout.write(`listening ${message.bound}\n`);
    }
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    cluster.on("exit", () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  });
} else {
  serve();
}
