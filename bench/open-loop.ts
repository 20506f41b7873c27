/**
 * An open-loop gRPC load generator on node:http2: sends one framed CheckRequest at a fixed
 * total rate, spread evenly over every millisecond (h2load's --rps sends per-client bursts,
 * which measures its own queueing more than the server), over `connections` HTTP/2
 * connections, and reports latency percentiles. Run as its own process so it has its own core.
 * Usage: node dist/bench/open-loop.js PORT BODY_FILE RATE SECONDS [CONNECTIONS]
 * Prints one JSON line: {sent, ok, failed, p50, p90, p99, max} (latencies in ms).
 */
import { readFileSync } from "node:fs";
import { connect, constants } from "node:http2";

const [port, bodyFile, rateText, secondsText, connectionsText] = process.argv.slice(2);
const body = readFileSync(bodyFile as string);
const rate = Number(rateText);
const seconds = Number(secondsText);
const sessions = Array.from({ length: Number(connectionsText ?? 8) }, () =>
  connect(`http://127.0.0.1:${port}`),
);
const latencies: number[] = [];
let sent = 0;
let failed = 0;
let next = 0;

function fire(): void {
  const session = sessions[next++ % sessions.length];
  if (session === undefined) return;
  const started = process.hrtime.bigint();
  sent++;
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_PATH]: "/envoy.service.auth.v3.Authorization/Check",
    "content-type": "application/grpc",
    te: "trailers",
  });
  let grpcStatus = "";
  stream.on("trailers", (t) => {
    grpcStatus = String(t["grpc-status"] ?? "");
  });
  stream.on("data", () => {});
  stream.on("end", () => {
    if (grpcStatus === "0") latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    else failed++;
  });
  stream.on("error", () => failed++);
  stream.end(body);
}

const start = performance.now();
let due = 0;
const timer = setInterval(() => {
  const elapsed = performance.now() - start;
  if (elapsed >= seconds * 1000) {
    clearInterval(timer);
    setTimeout(finish, 1000);
    return;
  }
  const target = Math.floor((elapsed / 1000) * rate);
  while (due < target) {
    fire();
    due++;
  }
}, 1);

function finish(): void {
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  process.stdout.write(
    `${JSON.stringify({ sent, ok: latencies.length, failed, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) })}\n`,
  );
  for (const s of sessions) s.close();
}
