/**
 * A closed-loop gRPC load generator over node:http2 for what h2load cannot do: a different
 * CheckRequest on every call. `connections` HTTP/2 connections each keep `streams` Checks in
 * flight; each finished Check starts the next one with the next body (`order: "random"` draws
 * bodies at random, `"sequential"` walks them once round). It only frames and sends bytes built
 * beforehand, so its own cost per Check is small next to the server's; it still shares the
 * machine, so it is run against the no-op server too and only the ratio is compared.
 */
import http2 from "node:http2";

export interface LoadOptions {
  readonly port: number;
  /** gRPC-framed CheckRequests. */
  readonly bodies: readonly Buffer[];
  readonly connections: number;
  readonly streams: number;
  /** Stop after this many seconds... */
  readonly seconds: number;
  /** ...or after this many Checks have been started, whichever comes first. */
  readonly maxRequests?: number;
  readonly order: "random" | "sequential";
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  /** Transport errors, non-200 statuses and non-OK grpc-status trailers. */
  readonly failed: number;
  /** How many different bodies were sent at least once. */
  readonly distinct: number;
  /** Per-Check latency at the client, microseconds, sorted ascending. */
  readonly micros: Float64Array;
}

const PATH = "/envoy.service.auth.v3.Authorization/Check";

export async function closedLoop(opts: LoadOptions): Promise<LoadResult> {
  const limit = opts.maxRequests ?? Number.POSITIVE_INFINITY;
  const started = performance.now();
  const deadline = started + opts.seconds * 1000;
  const micros: number[] = [];
  let issued = 0;
  let failed = 0;
  let next = 0;
  let distinct = 0;
  const used = new Uint8Array(opts.bodies.length);
  const pick = () => {
    const i =
      (opts.order === "random" ? Math.floor(Math.random() * opts.bodies.length) : next++) %
      opts.bodies.length;
    if (used[i] === 0) {
      used[i] = 1;
      distinct++;
    }
    return opts.bodies[i] as Buffer;
  };

  const runConnection = (session: http2.ClientHttp2Session) =>
    new Promise<void>((resolve) => {
      let open = 0;
      const launch = () => {
        if (issued >= limit || performance.now() >= deadline) {
          if (open === 0) resolve();
          return;
        }
        issued++;
        open++;
        const t0 = performance.now();
        let ok = false;
        const stream = session.request({
          ":method": "POST",
          ":path": PATH,
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("response", (headers) => {
          if (headers[":status"] !== 200) return;
          // a trailers-only answer carries grpc-status in the headers
          if (headers["grpc-status"] !== undefined) ok = headers["grpc-status"] === "0";
        });
        stream.on("trailers", (trailers) => {
          ok = trailers["grpc-status"] === "0";
        });
        stream.on("data", () => {});
        stream.on("error", () => {});
        stream.on("close", () => {
          open--;
          micros.push((performance.now() - t0) * 1000);
          if (!ok) failed++;
          launch();
        });
        stream.end(pick());
      };
      for (let s = 0; s < opts.streams; s++) launch();
    });

  const sessions = await Promise.all(
    Array.from(
      { length: opts.connections },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const session = http2.connect(`http://127.0.0.1:${opts.port}`);
          session.once("connect", () => resolve(session));
          session.once("error", reject);
        }),
    ),
  );
  try {
    await Promise.all(sessions.map(runConnection));
  } finally {
    for (const s of sessions) s.close();
  }
  const sorted = Float64Array.from(micros).sort();
  return {
    requests: micros.length,
    seconds: (performance.now() - started) / 1000,
    failed,
    distinct,
    micros: sorted,
  };
}

/** The q-quantile (0..1) of sorted microseconds, in milliseconds. */
export function quantileMs(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) / 1000;
}
