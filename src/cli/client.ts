import * as grpc from "@grpc/grpc-js";
import type { CheckRequestMessage } from "../transport/check-request.js";
import type { CheckResponseMessage } from "../transport/check-response.js";
import { loadProtos } from "../transport/protos.js";

/** A small gRPC client for riskgate's own services (CLI `check` and `health`, tests). */
export interface RiskgateClient {
  check(request: CheckRequestMessage, metadata?: grpc.Metadata): Promise<CheckResponseMessage>;
  health(service?: string): Promise<number>;
  close(): void;
}

/** Connects (lazily) to `address` (host:port) over plaintext HTTP/2. */
export function createClient(address: string, deadlineMs = 5000): RiskgateClient {
  const protos = loadProtos();
  const credentials = grpc.credentials.createInsecure();
  type Unary = (
    req: unknown,
    ...args:
      | [grpc.Metadata, grpc.CallOptions, (err: unknown, res: unknown) => void]
      | [grpc.CallOptions, (err: unknown, res: unknown) => void]
  ) => void;
  const auth = new protos.authorization(address, credentials) as unknown as grpc.Client & {
    Check: Unary;
  };
  const health = new protos.health(address, credentials) as unknown as grpc.Client & {
    Check: Unary;
  };
  const deadline = () => new Date(Date.now() + deadlineMs);
  return {
    check(request, metadata = new grpc.Metadata()) {
      return new Promise((resolve, reject) => {
        auth.Check(request, metadata, { deadline: deadline() }, (err: unknown, res: unknown) =>
          err ? reject(err) : resolve(res as CheckResponseMessage),
        );
      });
    },
    health(service = "") {
      return new Promise((resolve, reject) => {
        health.Check({ service }, { deadline: deadline() }, (err: unknown, res: unknown) =>
          err ? reject(err) : resolve((res as { status?: number }).status ?? 0),
        );
      });
    },
    close() {
      auth.close();
      health.close();
    },
  };
}

/**
 * One grpc.health.v1 probe on a fresh connection: the serving status, or "refused" when the
 * server does not answer within `deadlineMs` (not listening, draining, gone).
 */
export async function probeHealth(
  address: string,
  deadlineMs: number,
): Promise<number | "refused"> {
  const c = createClient(address, deadlineMs);
  try {
    return await c.health();
  } catch {
    return "refused";
  } finally {
    c.close();
  }
}
