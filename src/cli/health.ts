import { parseArgs } from "node:util";
import { loadSettings } from "../config/settings.js";
import { ServingStatus } from "../transport/health.js";
import { createClient } from "./client.js";

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
