/**
 * The stack's physical limit: an ext_authz server on the same grpc-js + proto-loader stack that
 * answers OK at once. Usage: node dist/bench/noop-server.js PORT
 */
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../src/transport/protos.js";

const port = Number(process.argv[2] ?? 0);
const server = new grpc.Server();
server.addService(loadProtos().authorization.service, {
  Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
    callback(null, { status: { code: 0 }, ok_response: {} });
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) throw err;
  process.stdout.write(`listening ${bound}\n`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
