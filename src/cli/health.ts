import { parseArgs } from "node:util";
import { loadSettings } from "../config/settings.js";
import { ServingStatus } from "../transport/health.js";
import { createClient } from "./client.js";

/** `riskgate health --help`. */
export const HELP = `riskgate health: ask a running riskgate's gRPC health service (grpc.health.v1)

Prints SERVING, NOT_SERVING (for example while draining) or UNREACHABLE. Docker's
HEALTHCHECK in the shipped image runs it.

Usage: riskgate health [--address HOST:PORT] [--service NAME]

Flags:
  --address HOST:PORT   riskgate's gRPC address (default: RISKGATE_GRPC_ADDRESS, 127.0.0.1:9191)
  --service NAME        the health service name (default "", the whole server;
                        envoy.service.auth.v3.Authorization is the Check service)

Example:
  riskgate health --address 127.0.0.1:9191

Exit codes:
  0  SERVING
  1  not serving, or unreachable`;

/** `riskgate health`: asks grpc.health.v1; exit 0 when SERVING, 1 otherwise (Docker HEALTHCHECK). */
export async function runHealth(
  args: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      address: { type: "string", default: defaultAddress(loadSettings(env).grpcAddress) },
      service: { type: "string", default: "" },
    },
  });
  const client = createClient(values.address, 2000);
  try {
    const status = await client.health(values.service);
    const name = Object.entries(ServingStatus).find(([, v]) => v === status)?.[0] ?? String(status);
    process.stdout.write(`${name}\n`);
    return status === ServingStatus.SERVING ? 0 : 1;
  } catch (err) {
    process.stdout.write(`UNREACHABLE ${(err as Error).message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** The server's own address (RISKGATE_GRPC_ADDRESS) as a client dials it (0.0.0.0 becomes 127.0.0.1). */
export function defaultAddress(listen: string): string {
  return listen.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:");
}
