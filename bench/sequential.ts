/**
 * One Check at a time, as a quiet Envoy sends them: a grpc-js client on one channel sends the
 * same serialized CheckRequest, waits for the answer, and sends the next, `count` times. The
 * request goes out as pre-built bytes and the answer is kept as bytes (pass-through
 * (de)serializers), so the client's own work is the same, and small, whatever the server.
 */
import * as grpc from "@grpc/grpc-js";

const PATH = "/envoy.service.auth.v3.Authorization/Check";
const same = (b: Buffer) => b;

export interface SequentialResult {
  /** Latency of each Check at the client, microseconds, sorted ascending. */
  readonly micros: Float64Array;
  /** Calls that ended in an error status. */
  readonly failed: number;
  /** The last answer's bytes (a serialized CheckResponse), to check its decision. */
  readonly last: Buffer | undefined;
}

/** `count` Checks one after another against 127.0.0.1:`port`; `warmup` more first, not timed. */
export async function sequentialChecks(
  port: number,
  message: Buffer,
  count: number,
  warmup = 0,
): Promise<SequentialResult> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const once = () =>
    new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(
        PATH,
        same,
        same,
        message,
        { deadline: Date.now() + 5000 },
        (err, value) => (err || value === undefined ? reject(err) : resolve(value)),
      );
    });
  const micros = new Float64Array(count);
  let failed = 0;
  let last: Buffer | undefined;
  try {
    for (let i = 0; i < warmup; i++) await once().catch(() => undefined);
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint();
      try {
        last = await once();
      } catch {
        failed++;
      }
      micros[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
  } finally {
    client.close();
  }
  return { micros: micros.sort(), failed, last };
}

/** The q-quantile (0..1) of sorted microseconds. */
export function quantileUs(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
