/**
 * What riskgate itself costs per Check, stage by stage, with no network in between (a plain
 * script, not vitest):
 *
 *   npm run build && node dist/bench/pipeline.bench.js [checks]
 *
 * The app is wired as `riskgate serve --dev` wires it (bench/policy.yaml, embedded geo database,
 * memory store, dev key, no telemetry) and fed the benchmark's CheckRequest:
 * - decode: the serialized CheckRequest through the gRPC service's own deserializer;
 * - normalise: CheckRequest -> AccessRequest;
 * - decide: the pipeline (route, cached token, license, every signal, one store batch, score),
 *   64 Checks in flight at a time as a busy server has them;
 * - render + encode: Verdict -> CheckResponse -> bytes.
 * The stages together are the CPU a Check costs beyond grpc-js and HTTP/2. Each stage runs
 * ROUNDS times; the best round is reported (the machine's noise only ever adds time).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPolicyFile } from "../src/access/policy.js";
import { createApp } from "../src/app.js";
import { createDevKeySource } from "../src/cli/dev-keys.js";
import { loadSettings } from "../src/config/settings.js";
import { openEmbeddedGeoReader } from "../src/geo/geo-reader.js";
import { createLogger } from "../src/telemetry/logger.js";
import { toAccessRequest } from "../src/transport/check-request.js";
import { renderCheckResponse } from "../src/transport/check-response.js";
import {
  BENCH_POLICY,
  benchEnv,
  benchKeys,
  benchRequest,
  benchToken,
  checkCodec,
  SINGLE,
  serialize,
  subjectAt,
} from "./workload.js";

const CHECKS = Number(process.argv[2] ?? 50_000);
const ROUNDS = 5;
const IN_FLIGHT = 64;

function best(fn: () => void, n: number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / n);
  }
  return min;
}

async function bestAsync(fn: (i: number) => Promise<unknown>, n: number): Promise<number> {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i += IN_FLIGHT) {
      const wave: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(n, i + IN_FLIGHT); j++) wave.push(fn(j));
      await Promise.all(wave);
    }
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / n);
  }
  return min;
}

async function main(): Promise<void> {
  const keysDir = join(mkdtempSync(join(tmpdir(), "riskgate-pipeline-bench-")), "keys");
  const settings = loadSettings({ ...process.env, ...benchEnv(keysDir) }, {});
  const keys = await benchKeys(keysDir);
  const app = createApp({
    settings: { ...settings, grpcAddress: "127.0.0.1:0" },
    logger: createLogger("warn"),
    devKeys: createDevKeySource(keys.publicJwks),
    geo: await openEmbeddedGeoReader({ cacheSize: settings.geoCacheSize }),
  });
  await app.start(await loadPolicyFile(BENCH_POLICY));
  const runtime = app.current();
  const decisions = runtime.policy.doc.decisions;
  const method = checkCodec();
  const bytes = serialize(benchRequest(await benchToken(keys, SINGLE), SINGLE));
  const opts = { trustedHops: 0, now: Date.now() };

  const msg = method.requestDeserialize(bytes);
  const req = toAccessRequest(msg, opts);
  const first = await app.pipeline.evaluate(runtime, req);
  if (first.verdict.kind !== "allow") throw new Error(`bench request: ${first.verdict.kind}`);
  const response = renderCheckResponse(first.verdict, req, decisions);

  const rows: [string, number][] = [];
  rows.push(["decode (gRPC deserializer)", best(() => method.requestDeserialize(bytes), CHECKS)]);
  rows.push(["normalise (toAccessRequest)", best(() => toAccessRequest(msg, opts), CHECKS)]);
  rows.push([
    "decide (pipeline.evaluate, cached token)",
    await bestAsync(() => app.pipeline.evaluate(runtime, req), CHECKS),
  ]);
  rows.push([
    "render (renderCheckResponse)",
    best(() => renderCheckResponse(first.verdict, req, decisions), CHECKS),
  ]);
  rows.push(["encode (gRPC serializer)", best(() => method.responseSerialize(response), CHECKS)]);
  const total = rows.reduce((n, [, ns]) => n + ns, 0);
  // the same stages as one Check sees them in the server: fresh bytes decoded, the clock moving
  const cycle = await bestAsync(async () => {
    const r = toAccessRequest(method.requestDeserialize(bytes), {
      trustedHops: 0,
      now: Date.now(),
    });
    const d = await app.pipeline.evaluate(runtime, r);
    return method.responseSerialize(renderCheckResponse(d.verdict, r, decisions));
  }, CHECKS);

  // many callers: distinct tokens and IPs, each token verified once then served from the cache
  const distinct = Math.min(10_000, CHECKS);
  const reqs = await Promise.all(
    Array.from({ length: distinct }, async (_, n) => {
      const who = subjectAt(n);
      return toAccessRequest(
        method.requestDeserialize(serialize(benchRequest(await benchToken(keys, who), who))),
        opts,
      );
    }),
  );
  const t0 = process.hrtime.bigint();
  for (const r of reqs) await app.pipeline.evaluate(runtime, r);
  const uncached = Number(process.hrtime.bigint() - t0) / distinct;
  const cached = await bestAsync((i) => app.pipeline.evaluate(runtime, reqs[i] as never), distinct);

  const us = (ns: number) => (ns / 1000).toFixed(2);
  const out = [
    `Node ${process.version}, ${CHECKS} Checks a stage, best of ${ROUNDS}.`,
    "",
    "| stage | µs per Check |",
    "|---|---|",
    ...rows.map(([name, ns]) => `| ${name} | ${us(ns)} |`),
    `| **all stages** | **${us(total)}** |`,
    `| all stages as one Check, fresh request and clock each time | ${us(cycle)} |`,
    `| decide, ${distinct} distinct callers, first sight (token verified) | ${us(uncached)} |`,
    `| decide, ${distinct} distinct callers, cached tokens | ${us(cached)} |`,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  await app.shutdown(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
