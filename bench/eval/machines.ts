import { tokenLifetimeSeconds } from "./idp.js";
import type { TokenSpec } from "./model.js";
import { CITIES, CLOUD, type CloudName } from "./places.js";
import type { Rng } from "./rng.js";
import { type Ctx, DAY, H, isWeekday, localMidnight, MIN, n, port, S, sec } from "./sim.js";
import { JOB_UAS, type Org, orgById, SDK_UAS } from "./world.js";

/**
 * Machine clients: server-side integrations and nightly jobs with client-credentials tokens in
 * their org's IdP's shape (bench/eval/idp.ts). Written from how such clients run: a token cached
 * until a minute before it expires, then fetched again; fixed polling cadences with a
 * scheduler's small jitter; cron start times; sequential paging; library user agents; egress
 * through a cloud NAT gateway or the company's data centre.
 */

/** A client-credentials token cache, as OAuth client libraries keep one. */
function tokenCache(r: Rng, name: string, o: Org): (t: number) => TokenSpec {
  let cached: TokenSpec | undefined;
  return (t) => {
    if (cached === undefined || t >= (cached.exp - 60) * S) {
      const iat = sec(t);
      cached = {
        sub: name,
        org: o.id,
        tier: o.tier,
        iat,
        exp: iat + tokenLifetimeSeconds(o.idp, r.next()),
        clientId: name,
        idp: o.idp,
      };
    }
    return cached;
  };
}

const localHour = (ctx: Ctx, o: Org, t: number) =>
  ((((t - ctx.opts.start) / H + CITIES[o.city].utcOffsetHours) % 24) + 24) % 24;
const localDay = (ctx: Ctx, o: Org, t: number) =>
  Math.floor((t - ctx.opts.start + CITIES[o.city].utcOffsetHours * H) / DAY);

/** Integrations: org, egress (a cloud region, or the org's data centre), polling interval. */
const SDK_SETUPS: readonly (readonly [string, CloudName | undefined, number])[] = [
  ["acme", "awsFrankfurt", 60],
  ["lumen", undefined, 120],
  ["harbor", "awsVirginia", 30],
  ["sakura", undefined, 300],
  ["northwind", "gcpLondon", 60],
  ["goldengate", "gcpIowa", 60],
  ["merlion", "awsSingapore", 120],
  ["paulista", "gcpSaoPaulo", 300],
  ["maple", "azureVirginia", 60],
  ["fjord", "hetznerHelsinki", 120],
  ["brightpath", "awsFrankfurt", 300],
  ["tinyco", "doFrankfurt", 300],
];

/**
 * Server-side integrations: a poller on a fixed interval (the scheduler's jitter is a few
 * seconds) asks for what changed; events from the integration's own users are pushed as they
 * happen, following their business day; some pull a report export every hour.
 */
export function sdkClients(ctx: Ctx, rng: Rng): void {
  const end = ctx.opts.start + ctx.opts.days * DAY;
  for (let i = 0; i < n(ctx, 12); i++) {
    const [orgId, cloud, pollSeconds] = SDK_SETUPS[i % SDK_SETUPS.length] as [
      string,
      CloudName | undefined,
      number,
    ];
    const o = orgById(orgId);
    const r = rng.fork(`sdk-${i}`);
    const id = `client-${o.id}-sync-${i}`;
    const group = cloud ? "sdk-client-cloud" : "sdk-client";
    const ips = cloud ? CLOUD[cloud].ips.slice(0, 2) : [CITIES[o.city].ips[0] as string];
    const ua = SDK_UAS[i % SDK_UAS.length] as string;
    // the poller, the event sender and the report puller are separate workers, each with the
    // client library's own token cache
    const tokens = [tokenCache(r, id, o), tokenCache(r, id, o), tokenCache(r, id, o)];
    const hourlyExport = o.tier !== "free" && r.chance(0.5);
    const emit = (w: number, t: number, method: string, path: string, bodyBytes?: number) =>
      ctx.emit({
        t: Math.round(t),
        label: "legit",
        group,
        actor: id,
        ip: r.pick(ips),
        port: port(r),
        method,
        path,
        userAgent: ua,
        token: (tokens[w] as (t: number) => TokenSpec)(t),
        reaction: "machine",
        ...(bodyBytes === undefined ? {} : { bodyBytes }),
      });
    // the poller
    for (let t = ctx.opts.start + r.next() * pollSeconds * S; t < end; ) {
      emit(0, t, "GET", `/v1/projects/${r.int(1, 40)}/tasks?updated_since=${sec(t) - pollSeconds}`);
      t += pollSeconds * S + r.normal(0, 1.5 * S);
    }
    // pushed events, as the integration's users work
    for (let t = ctx.opts.start + r.next() * MIN; t < end; ) {
      const h = localHour(ctx, o, t);
      const busy = h >= 8 && h < 19 && isWeekday(localDay(ctx, o, t));
      const perMin = busy ? 0.3 + 1.2 * Math.sin(((h - 8) / 11) * Math.PI) : 0.05;
      if (o.tier !== "free") emit(1, t, "POST", "/v1/events", r.int(500, 20000));
      else emit(1, t, "GET", "/v1/projects");
      t += r.exp(MIN / perMin);
    }
    if (hourlyExport) {
      for (let t = ctx.opts.start + r.int(1, 59) * MIN; t < end; t += H + r.normal(0, 2 * S)) {
        emit(2, t, "GET", `/v1/reports/${r.hex(8)}/export`);
      }
    }
  }
}

/** Nightly jobs: org, where they run, cron minute after local midnight, kind, weekdays only. */
const JOB_SETUPS: readonly (readonly [
  string,
  CloudName | undefined,
  number,
  "sync" | "archive",
  boolean,
])[] = [
  ["harbor", "awsVirginia", 120, "sync", false],
  ["acme", "hetznerNuremberg", 90, "sync", false],
  ["maple", undefined, 150, "archive", true],
  ["northwind", "gcpLondon", 180, "sync", false],
  ["sakura", "awsSingapore", 60, "archive", false],
  ["goldengate", "gcpIowa", 210, "sync", true],
  ["paulista", "gcpSaoPaulo", 120, "archive", false],
  ["merlion", "doSingapore", 240, "sync", false],
];

/**
 * Nightly jobs on cloud hosts: cron starts them at a fixed local time (the scheduler adds
 * seconds to a minute), they fetch a token, then page through the data one request after the
 * other (server time plus the job's own processing), or archive the day's report exports.
 */
export function batchJobs(ctx: Ctx, rng: Rng): void {
  for (let i = 0; i < n(ctx, 8); i++) {
    const [orgId, cloud, cronMinute, kind, weekdaysOnly] = JOB_SETUPS[i % JOB_SETUPS.length] as [
      string,
      CloudName | undefined,
      number,
      "sync" | "archive",
      boolean,
    ];
    const o = orgById(orgId);
    const r = rng.fork(`batch-${i}`);
    const id = `client-${o.id}-nightly-${i}`;
    const ips = cloud ? CLOUD[cloud].ips.slice(0, 2) : [CITIES[o.city].ips[1] as string];
    const ua = JOB_UAS[i % JOB_UAS.length] as string;
    const token = tokenCache(r, id, o);
    for (let d = 0; d < ctx.opts.days; d++) {
      // the job runs after midnight for the day before; weekday jobs skip Sunday and Monday nights
      if (weekdaysOnly && (d % 7 === 0 || d % 7 === 6)) continue;
      let t = localMidnight(ctx, o.city, d) + cronMinute * MIN + r.int(1, 60) * S;
      const ip = r.pick(ips);
      const pages = kind === "sync" ? Math.round(r.logNormal(600, 0.3)) : r.int(25, 70);
      for (let pg = 1; pg <= pages; pg++) {
        ctx.emit({
          t: Math.round(t),
          label: "legit",
          group: "batch",
          actor: id,
          ip,
          port: port(r),
          method: "GET",
          path:
            kind === "sync"
              ? `/v1/projects/${1 + (pg % 40)}/tasks?page=${pg}&per_page=100`
              : `/v1/reports/${r.hex(8)}/export`,
          userAgent: ua,
          token: token(t),
          reaction: "machine-job",
          run: `${id}:${d}`,
        });
        t += kind === "sync" ? r.int(80, 250) + r.logNormal(150, 0.5) : r.logNormal(2.5 * S, 0.4);
      }
    }
  }
}
