/**
 * IP list and geo reader micro-benchmark (a plain script, not vitest):
 *
 *   npm run build && node --expose-gc dist/bench/ip-list.bench.js        # lists, then geo
 *   node --expose-gc dist/bench/ip-list.bench.js lists|geo               # one part
 *
 * Lists: 100k random CIDRs (70% IPv4, 30% IPv6, prefix lengths shaped like real feeds):
 * parse + build time, memory kept, lookups per second for hits and misses, and the longest
 * event-loop stall while a watcher reloads that file.
 * Geo: the embedded DB-IP City Lite files: open time, RSS and Buffer memory they add,
 * lookups per second with and without the address cache. The geo part runs in a fresh child
 * process so that its RSS figures are not muddied by the list part. Prints Markdown tables
 * (docs/geo.md carries the figures).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { openEmbeddedGeoReader } from "../src/geo/geo-reader.js";
import { formatIpv4, formatIpv6 } from "../src/geo/ip-address.js";
import { createIpListWatcher, parseIpList } from "../src/geo/ip-list.js";

const CIDRS = 100_000;
const PROBES = 200_000;
const ROUNDS = 5;

/** xorshift32: reproducible inputs from run to run. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): void {
  gc?.();
  gc?.();
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** Best of ROUNDS (least disturbed) ns per call of `fn` over `inputs`. */
function nsPerOp(inputs: readonly string[], fn: (ip: string) => unknown): number {
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    for (const ip of inputs) if (fn(ip)) sink++;
    best = Math.min(best, Number(process.hrtime.bigint() - t) / inputs.length);
  }
  if (sink < 0) console.log(sink); // keeps the loop from being optimised away
  return best;
}

const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;

async function benchLists(): Promise<void> {
  const rand = random(0x1234567);
  // Shaped like real feeds: mostly /24s and single hosts (IPv4), /29-/48s and hosts (IPv6).
  const v4Prefixes = [16, 19, 20, 22, 23, 24, 24, 24, 24, 28, 32, 32, 32, 32, 32, 32];
  const v6Prefixes = [29, 32, 32, 36, 40, 44, 48, 48, 48, 56, 64, 128];
  const v6 = () => [0x20000000 | (rand() & 0x1fffffff), rand(), rand(), rand()] as const;
  const lines: string[] = [];
  const v4Blocks: number[] = [];
  const v6Blocks: (readonly [number, number, number, number])[] = [];
  for (let i = 0; i < CIDRS; i++) {
    if (i % 10 < 7) {
      const start = rand();
      v4Blocks.push(start);
      lines.push(`${formatIpv4(start)}/${v4Prefixes[rand() % v4Prefixes.length]}`);
    } else {
      const start = v6();
      v6Blocks.push(start);
      lines.push(`${formatIpv6(start)}/${v6Prefixes[rand() % v6Prefixes.length]}`);
    }
  }
  const text = `# bench list\n${lines.join("\n")}\n`;

  settle();
  const before = process.memoryUsage();
  const t0 = process.hrtime.bigint();
  const { list, errors } = parseIpList(text, "bench");
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  settle();
  const after = process.memoryUsage();
  if (errors.length > 0) throw new Error(`bench list has ${errors.length} bad lines`);

  // Half the probes are addresses of listed blocks (hits), half random (mostly misses).
  const probes4: string[] = [];
  const probes6: string[] = [];
  for (let i = 0; i < PROBES; i++) {
    const hit = i % 2 === 0;
    probes4.push(formatIpv4(hit ? (v4Blocks[rand() % v4Blocks.length] as number) : rand()));
    probes6.push(
      formatIpv6(hit ? (v6Blocks[rand() % v6Blocks.length] as (typeof v6Blocks)[0]) : v6()),
    );
  }
  const share = (probes: string[]) =>
    `${Math.round((100 * probes.filter((ip) => list.has(ip)).length) / probes.length)}% hits`;
  const mapped = probes4.map((ip) => `::ffff:${ip}`);

  const rows: [string, number][] = [
    [`IPv4 has() (${share(probes4)})`, nsPerOp(probes4, (ip) => list.has(ip))],
    ["IPv4 match() (CIDR text on a hit)", nsPerOp(probes4, (ip) => list.match(ip))],
    ["IPv4-mapped IPv6 has()", nsPerOp(mapped, (ip) => list.has(ip))],
    [`IPv6 has() (${share(probes6)})`, nsPerOp(probes6, (ip) => list.has(ip))],
    ["IPv6 match()", nsPerOp(probes6, (ip) => list.match(ip))],
  ];

  const stall = await reloadStall(text);

  console.log(`### IP list: ${CIDRS.toLocaleString("en")} random CIDRs (70% IPv4, 30% IPv6)\n`);
  console.log(
    `Node ${process.version}, ${process.arch}; best of ${ROUNDS} rounds of ${PROBES.toLocaleString("en")} lookups.\n`,
  );
  console.log(row(["what", "figure"]));
  console.log(row(["---", "---"]));
  console.log(row(["parse + build (text to list)", `${buildMs.toFixed(0)} ms`]));
  console.log(row(["blocks kept (nested ones folded)", list.size.toLocaleString("en")]));
  console.log(
    row([
      "memory kept by the list (heap + typed arrays)",
      gc === undefined
        ? "run with --expose-gc"
        : mb(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers),
    ]),
  );
  console.log(row(["watcher reload of that file: whole", `${stall.totalMs.toFixed(0)} ms`]));
  console.log(
    row(["watcher reload: longest event-loop stall", `${stall.maxStallMs.toFixed(0)} ms`]),
  );
  for (const [what, ns] of rows) {
    console.log(row([what, `${ns.toFixed(0)} ns (${(1e9 / ns / 1e6).toFixed(2)} M/s)`]));
  }
  console.log("");
}

/** Reloads `text` through a real watcher and reports how long the event loop was held at most. */
async function reloadStall(text: string): Promise<{ totalMs: number; maxStallMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "riskgate-bench-list-"));
  const file = join(dir, "list.netset");
  writeFileSync(file, text);
  const watcher = createIpListWatcher(
    { onLoad: () => {}, onError: (err) => console.error(err) },
    { file },
  );
  try {
    await watcher.ready();
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const t0 = performance.now();
    await watcher.reload();
    const totalMs = performance.now() - t0;
    delay.disable();
    return { totalMs, maxStallMs: delay.max / 1e6 };
  } finally {
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchGeo(): Promise<void> {
  // Inputs first, so that the memory figures below count the reader only.
  const rand = random(0xfeed);
  const random4 = Array.from({ length: PROBES }, () => formatIpv4(rand()));
  const random6 = Array.from({ length: PROBES / 4 }, () =>
    formatIpv6([0x2a000000 | (rand() & 0x00ffffff), rand(), rand(), rand()]),
  );
  const fill = Array.from({ length: 10_000 }, () => formatIpv4(rand()));
  const hot = random4.slice(0, 1000);
  const hotRound = Array.from({ length: PROBES }, (_, i) => hot[i % hot.length] as string);
  const privateRound = hotRound.map(() => "10.1.2.3");

  settle();
  const before = process.memoryUsage();
  const t0 = process.hrtime.bigint();
  const geo = await openEmbeddedGeoReader({ cacheSize: 10_000 });
  const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
  settle();
  const opened = process.memoryUsage();
  let placed = 0;
  for (const ip of fill) if (geo.lookup(ip) !== undefined) placed++;
  settle();
  const filled = process.memoryUsage();

  console.log("### Geo reader: embedded DB-IP City Lite (IPv4 and IPv6 files)\n");
  console.log(row(["what", "figure"]));
  console.log(row(["---", "---"]));
  console.log(row(["open (read both files, parse metadata)", `${openMs.toFixed(0)} ms`]));
  console.log(row(["RSS added by opening", mb(opened.rss - before.rss)]));
  console.log(
    row(["Buffer memory (arrayBuffers) added", mb(opened.arrayBuffers - before.arrayBuffers)]),
  );
  console.log(row(["V8 heap added by opening", mb(opened.heapUsed - before.heapUsed)]));
  console.log(
    row([
      `V8 heap added by 10,000 cached lookups (${placed} placed) and maxmind's record cache`,
      mb(filled.heapUsed - opened.heapUsed),
    ]),
  );
  // The random lists hold far more addresses than the cache, so every lookup misses: parse,
  // tree walk, record decode, mapping and cache insert.
  const ops: [string, number][] = [
    ["IPv4 lookup, cache miss (random addresses)", nsPerOp(random4, (ip) => geo.lookup(ip))],
    ["IPv6 lookup, cache miss (random in 2a00::/8)", nsPerOp(random6, (ip) => geo.lookup(ip))],
    [
      "lookup of a hot address (1,000 distinct, cache hit)",
      nsPerOp(hotRound, (ip) => geo.lookup(ip)),
    ],
    ["private address (rejected before the cache)", nsPerOp(privateRound, (ip) => geo.lookup(ip))],
  ];
  for (const [what, ns] of ops) {
    console.log(row([what, `${ns.toFixed(0)} ns (${(1e9 / ns / 1e6).toFixed(2)} M/s)`]));
  }
  settle();
  console.log(row(["process RSS at the end", mb(process.memoryUsage().rss)]));
  console.log("");
  geo.close();
}

const part = process.argv[2];
if (part === "lists") await benchLists();
else if (part === "geo") await benchGeo();
else {
  await benchLists();
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, self, "geo"], {
    stdio: "inherit",
  });
  process.exitCode = child.status ?? 1;
}
