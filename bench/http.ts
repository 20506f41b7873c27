/**
 * The HTTP rows of `npm run bench`: forward-auth Checks per second and latency (what nginx,
 * Traefik and Caddy users pay for riskgate next to what gRPC users pay),
 * measured with h2load's HTTP/1.1 mode (--h1) and pinned like the gRPC rows (servers and nginx
 * on core 0, h2load on core 1).
 *  - riskgate's /auth/forward directly (X-Forwarded-* headers, the cached bearer token of the
 *    gRPC rows), next to a node:http server that answers 200 at once (bench/noop-http-server.ts);
 *  - one nginx (worker_processes 1) with two sites: a plain reverse proxy to the upstream, and
 *    the shipped proxies/nginx/riskgate.conf (auth_request to riskgate's /auth/nginx) in front
 *    of the same upstream. The upstream is a static 200 served by that nginx itself, so the
 *    difference between the two sites is what riskgate adds.
 * h2load sees only statuses: anything but 2xx counts as failed, and so does any riskgate
 * decision other than allow (its own counters).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitForPort } from "../test/helpers/free-port.js";
import { h2loadQuantiles } from "./h2load-log.js";
import { SINGLE } from "./workload.js";

export interface HttpRun {
  scenario: string;
  rps: number;
  /** The Check/s this row is compared with (its no-op). */
  baseline: number;
  failed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface HttpBenchDeps {
  readonly work: string;
  readonly pin: boolean;
  readonly seconds: number;
  readonly rounds: number;
  /** Concurrent HTTP/1.1 connections of the closed-loop runs (one request in flight on each). */
  readonly connections: number;
  readonly token: string;
  readonly children: ChildProcess[];
  /** Starts a riskgate with these extra settings on core 0; resolves to its HTTP port. */
  readonly riskgate: (name: string, env: Record<string, string>) => Promise<number>;
  /** Starts bench/noop-http-server.js on core 0; resolves to its port. */
  readonly noopHttp: () => Promise<number>;
  readonly freePort: () => Promise<number>;
  /** Decisions by outcome so far, from a riskgate's metrics. */
  readonly decisions: (metricsPort: number) => Promise<Record<string, number>>;
  /** The best gRPC (a) row's Check/s, when the gRPC rows ran in the same run. */
  readonly grpcMemory?: number;
}

export interface HttpBenchResult {
  /** The "## HTTP forward-auth" section of BENCHMARKS.md. */
  readonly markdown: string;
  /** Failed requests plus decisions other than allow. */
  readonly failed: number;
}

/** The headers a forward-auth proxy (Traefik, Caddy) sends for the bench request. */
function forwardHeaders(token: string): string[] {
  return [
    "x-forwarded-method: GET",
    "x-forwarded-uri: /v1/items?limit=20",
    "x-forwarded-host: api.example.com",
    "x-forwarded-proto: https",
    `x-forwarded-for: ${SINGLE.ip}`,
    ...clientHeaders(token),
  ];
}

/** The original request's own headers, as the browser sent them (same as the gRPC request). */
function clientHeaders(token: string): string[] {
  return [
    `authorization: Bearer ${token}`,
    "accept: application/json",
    "x-request-id: 7f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8",
    "x-device-id: laptop-42",
    "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  ];
}

/**
 * One h2load --h1 run: closed loop over `connections` keep-alive connections with one request in
 * flight each, or `light`: one request at a time. Non-2xx answers count as failed.
 */
function h1load(
  work: string,
  scenario: string,
  url: string,
  headers: string[],
  seconds: number,
  connections: number,
): HttpRun {
  // a fresh file per run: h2load appends to an existing --log-file, which would mix rounds
  const log = join(mkdtempSync(join(work, "h1load-")), `${scenario.replace(/\W+/g, "_")}.log`);
  const out = execFileSync(
    "h2load",
    [
      "--h1",
      ...["-D", String(seconds), "-t", "1", "-c", String(connections), "-m", "1"],
      ...["--log-file", log],
      ...headers.flatMap((h) => ["-H", h]),
      url,
    ],
    { encoding: "utf8" },
  );
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  // h2load's own "failed" already holds 4xx and 5xx answers; a 3xx is a failure here too
  const counts = /\d+ succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const not2xx = codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0;
  const failed = Math.max(Number(counts?.[1] ?? 0) + Number(counts?.[2] ?? 0), not2xx);
  const q = h2loadQuantiles(log);
  return {
    scenario,
    rps,
    baseline: rps,
    failed,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: q(1),
  };
}

/**
 * The nginx.conf: the shipped riskgate.conf on `authPort`, a plain proxy on `plainPort`, both to
 * a static upstream on `upstreamPort`. Logs off, one worker, keep-alive to the upstream.
 */
function writeNginxConf(
  dir: string,
  ports: { auth: number; plain: number; upstream: number; riskgate: number },
): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const site = readFileSync("proxies/nginx/riskgate.conf", "utf8")
    .replace("server 127.0.0.1:9192;", `server 127.0.0.1:${ports.riskgate};`)
    .replace("server 127.0.0.1:8080;", `server 127.0.0.1:${ports.upstream};\n    keepalive 32;`)
    .replace("listen 127.0.0.1:8000;", `listen 127.0.0.1:${ports.auth};`)
    .replace(
      "proxy_pass http://riskgate_app;",
      'proxy_pass http://riskgate_app;\n        proxy_http_version 1.1;\n        proxy_set_header Connection "";',
    );
  if (!site.includes(String(ports.riskgate)) || !site.includes(String(ports.auth)))
    throw new Error("proxies/nginx/riskgate.conf no longer has the ports bench/http.ts replaces");
  writeFileSync(join(dir, "riskgate.conf"), site);
  for (const t of ["body", "proxy", "fastcgi", "uwsgi", "scgi"])
    mkdirSync(join(dir, t), { recursive: true });
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  include ${dir}/riskgate.conf;
  # the upstream: a static answer, so the proxies' difference is riskgate's
  server {
    listen 127.0.0.1:${ports.upstream};
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '{"items":[]}'; }
  }
  # the same nginx without auth_request
  upstream plain_app {
    server 127.0.0.1:${ports.upstream};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${ports.plain};
    location / {
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://plain_app;
    }
  }
}
`,
  );
  return conf;
}

export function findNginx(): string | undefined {
  for (const candidate of ["nginx", "/usr/sbin/nginx"]) {
    try {
      execFileSync(candidate, ["-v"], { stdio: "ignore" });
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export async function httpBench(nginx: string, deps: HttpBenchDeps): Promise<HttpBenchResult> {
  const metricsPort = await deps.freePort();
  const riskgate = await deps.riskgate("http", {
    RISKGATE_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
    // the client address is the X-Forwarded-For entry in front of nginx, as the gRPC request's
    RISKGATE_TRUSTED_HOPS: "1",
  });
  const noop = await deps.noopHttp();
  const ports = {
    auth: await deps.freePort(),
    plain: await deps.freePort(),
    upstream: await deps.freePort(),
    riskgate,
  };
  const dir = join(deps.work, "nginx");
  const conf = writeNginxConf(dir, ports);
  const args = ["-p", dir, "-c", conf, "-e", join(dir, "error.log")];
  const proc = deps.pin
    ? spawn("taskset", ["-c", "0", nginx, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(nginx, args, { stdio: ["ignore", "pipe", "pipe"] });
  deps.children.push(proc);
  let output = "";
  proc.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  proc.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  for (const p of [ports.auth, ports.plain, ports.upstream])
    await waitForPort(p, proc, "nginx", () => output);

  const token = deps.token;
  const direct = `http://127.0.0.1:${riskgate}/auth/forward`;
  const through = (port: number) => `http://127.0.0.1:${port}/v1/items?limit=20`;
  // the browser's request through nginx: its Host, its address in X-Forwarded-For
  const viaNginx = [
    ":authority: api.example.com",
    `x-forwarded-for: ${SINGLE.ip}`,
    ...clientHeaders(token),
  ];
  const names = {
    noop: "HTTP no-op node:http, 200 at once",
    direct: "HTTP riskgate /auth/forward directly",
    plain: "nginx proxy, no auth (static upstream)",
    auth: "nginx + auth_request to riskgate (shipped riskgate.conf)",
  };
  const targets: [string, string, string[]][] = [
    [names.noop, `http://127.0.0.1:${noop}/auth/forward`, forwardHeaders(token)],
    [names.direct, direct, forwardHeaders(token)],
    [names.plain, through(ports.plain), viaNginx],
    [names.auth, through(ports.auth), viaNginx],
  ];
  const before = await deps.decisions(metricsPort);
  const runs: HttpRun[] = [];
  const failedWarm = targets
    .map(([n, url, h]) => h1load(deps.work, `warm ${n}`, url, h, 2, deps.connections).failed)
    .reduce((a, b) => a + b, 0);
  for (let round = 0; round < deps.rounds; round++) {
    for (const [n, url, h] of targets)
      runs.push(h1load(deps.work, n, url, h, deps.seconds, deps.connections));
  }
  const best = (name: string) =>
    runs.filter((r) => r.scenario === name).sort((a, b) => b.rps - a.rps)[0] as HttpRun;
  for (const r of runs)
    r.baseline = best(
      r.scenario === names.direct || r.scenario === names.noop ? names.noop : names.plain,
    ).rps;
  // one request at a time, each compared with its no-op under the same one-at-a-time load
  const light: HttpRun[] = targets.map(([n, url, h]) =>
    h1load(deps.work, `light load, one request at a time: ${n}`, url, h, 4, 1),
  );
  const lightOf = (name: string) => light.find((r) => r.scenario.endsWith(name)) as HttpRun;
  for (const r of light)
    r.baseline = lightOf(
      r.scenario.endsWith(names.direct) || r.scenario.endsWith(names.noop)
        ? names.noop
        : names.plain,
    ).rps;
  runs.push(...light);
  const after = await deps.decisions(metricsPort);
  const decided = Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]),
  );
  const notAllowed = Object.entries(decided)
    .filter(([k]) => k !== "allow")
    .reduce((n, [, v]) => n + v, 0);

  const fmt = (n: number) => n.toFixed(2);
  const delta = (n: number) => `${n < 0 ? "-" : "+"}${Math.abs(n).toFixed(2)}`;
  const rows = runs.map(
    (r) =>
      `| ${r.scenario} | ${r.rps.toFixed(0)} | ${((r.rps / Math.max(1, r.baseline)) * 100).toFixed(0)}% | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${r.failed} |`,
  );
  const [d, p, a] = [best(names.direct), best(names.plain), best(names.auth)];
  const [ld, lp, la] = [lightOf(names.direct), lightOf(names.plain), lightOf(names.auth)];
  const summary = [
    `- riskgate /auth/forward directly: **${d.rps.toFixed(0)} Checks/s**, ${((d.rps / Math.max(1, best(names.noop).rps)) * 100).toFixed(0)}% of the node:http no-op${deps.grpcMemory === undefined ? "" : `; gRPC (a) in this run: ${deps.grpcMemory.toFixed(0)} Check/s`}. One request at a time: p50 ${fmt(ld.p50)} ms, p99 ${fmt(ld.p99)} ms.`,
    `- nginx with auth_request to riskgate: **${a.rps.toFixed(0)} Checks/s** vs ${p.rps.toFixed(0)} req/s for the same nginx without it (${((a.rps / Math.max(1, p.rps)) * 100).toFixed(0)}%). Latency riskgate adds through nginx, one request at a time: **p50 ${delta(la.p50 - lp.p50)} ms, p99 ${delta(la.p99 - lp.p99)} ms** (${fmt(la.p50)} vs ${fmt(lp.p50)} ms, ${fmt(la.p99)} vs ${fmt(lp.p99)} ms); under the closed loop: p50 ${delta(a.p50 - p.p50)} ms, p99 ${delta(a.p99 - p.p99)} ms. On a shared 2-core VM the p99 of a run is dominated by scheduling stalls, so compare the p50s first.`,
    `- riskgate's decisions during these rows: ${JSON.stringify(decided)} (anything but allow is a failure).`,
  ];
  const markdown = [
    "## HTTP forward-auth",
    "",
    `Load: h2load --h1 -t 1, ${deps.connections} keep-alive connections x 1 request in flight, ${deps.seconds} s a run, ${deps.rounds} alternating rounds; light-load rows one request at a time for 4 s. The request is the gRPC rows' (GET /v1/items?limit=20 from ${SINGLE.ip}, the same cached ES256 token): sent to /auth/forward with X-Forwarded-* headers, or to nginx as the browser's request. nginx (worker_processes 1) runs the shipped proxies/nginx/riskgate.conf (auth_request to /auth/nginx, keep-alive to riskgate) and, on another port, a plain proxy to the same upstream, a static 200 that nginx serves itself, so the two differ by riskgate alone. riskgate, the no-op and nginx on core 0, h2load on core 1. "of no-op" is against the node:http no-op for the direct row and against the plain nginx for the nginx rows, each under the same load shape.`,
    "",
    "| scenario | Checks/s | of no-op | p50 ms | p90 ms | p99 ms | max ms | failed |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    ...summary,
    "",
  ].join("\n");
  return {
    markdown,
    failed: runs.reduce((n, r) => n + r.failed, 0) + failedWarm + notAllowed,
  };
}
