import type { SimRequest, TokenSpec } from "./model.js";
import { CITIES, type CityName } from "./places.js";
import type { Rng } from "./rng.js";
import { BROWSER_UAS, type Org } from "./world.js";

/** Options of the simulated week (see traffic.ts). */
export interface TrafficOptions {
  /** Monday 00:00 UTC of the simulated week, ms. */
  readonly start: number;
  readonly days: number;
  /** Multiplies the number of actors of every population and family (1 = the default run). */
  readonly scale: number;
}

export const S = 1000;
export const MIN = 60 * S;
export const H = 60 * MIN;
export const DAY = 24 * H;

export type Emit = (r: SimRequest) => void;

export interface Ctx {
  readonly opts: TrafficOptions;
  readonly emit: Emit;
}

/** The common shape of a person's requests. */
export interface Person {
  readonly id: string;
  readonly org: Org;
  readonly group: string;
  readonly label: "legit" | "attack";
  readonly device: string;
  readonly ua: string;
  readonly mfa: boolean;
  readonly admin: boolean;
}

export const port = (rng: Rng) => rng.int(32768, 60999);
export const sec = (ms: number) => Math.floor(ms / S);

/** Local midnight of day `d` of the week in a city, as UTC ms. */
export function localMidnight(ctx: Ctx, city: CityName, d: number): number {
  return ctx.opts.start + d * DAY - CITIES[city].utcOffsetHours * H;
}

export const isWeekday = (d: number) => d % 7 < 5;

/** A browser session's token: refreshed every hour from the login, same auth_time. */
export function sessionToken(
  p: Person,
  login: number,
  t: number,
  amr?: readonly string[],
): TokenSpec {
  const iat = login + Math.floor((t - login) / H) * H;
  return {
    sub: p.id,
    org: p.org.id,
    tier: p.org.tier,
    iat: sec(iat),
    exp: sec(iat + H),
    amr: amr ?? (p.mfa ? ["pwd", "mfa"] : ["pwd"]),
    authTime: sec(login),
  };
}

export interface Call {
  readonly method: string;
  readonly path: string;
  readonly bodyBytes?: number;
}

/** The API calls one screen of the web app makes. */
export function pageCalls(rng: Rng, p: Person): Call[] {
  const pid = rng.int(1, 40);
  const r = rng.next();
  const writes = p.org.tier !== "free";
  if (r < 0.3)
    return [
      { method: "GET", path: "/v1/projects" },
      { method: "GET", path: "/v1/me" },
    ];
  if (r < 0.65)
    return [
      { method: "GET", path: `/v1/projects/${pid}` },
      { method: "GET", path: `/v1/projects/${pid}/tasks?page=${rng.int(1, 3)}` },
      ...(rng.chance(0.5) ? [{ method: "GET", path: `/v1/projects/${pid}/members` }] : []),
    ];
  if (r < 0.78) return [{ method: "GET", path: `/v1/tasks/${rng.int(1000, 99999)}` }];
  if (r < 0.86) return [{ method: "GET", path: `/v1/search?q=${rng.hex(6)}` }];
  if (r < 0.97 && writes)
    return [
      rng.chance(0.5)
        ? { method: "POST", path: `/v1/projects/${pid}/tasks`, bodyBytes: rng.int(300, 4000) }
        : {
            method: "PATCH",
            path: `/v1/tasks/${rng.int(1000, 99999)}`,
            bodyBytes: rng.int(80, 900),
          },
      { method: "GET", path: `/v1/projects/${pid}/tasks?page=1` },
    ];
  if (writes) return [{ method: "GET", path: `/v1/reports/${rng.hex(8)}/export` }];
  return [{ method: "GET", path: "/v1/projects" }];
}

/**
 * A person using the web app between `from` and `to`: active spells (median 25 min) and idle
 * gaps (meetings, other tools; median 35 min); inside a spell, screens with a log-normal think
 * time (median 40 s), each screen firing its API calls within a second.
 */
export function browse(
  ctx: Ctx,
  rng: Rng,
  p: Person,
  from: number,
  to: number,
  where: (t: number) => { ip: string; ua?: string; device?: string },
  token: (t: number) => TokenSpec,
  calls: (rng: Rng, p: Person) => Call[] = pageCalls,
): void {
  let t = from + rng.exp(5 * MIN);
  while (t < to) {
    const spellEnd = Math.min(to, t + rng.logNormal(25 * MIN, 0.6));
    while (t < spellEnd) {
      const at = where(t);
      const sourcePort = port(rng);
      let ct = t;
      for (const c of calls(rng, p)) {
        ctx.emit({
          t: Math.round(ct),
          label: p.label,
          group: p.group,
          actor: p.id,
          ip: at.ip,
          port: sourcePort,
          method: c.method,
          path: c.path,
          userAgent: at.ua ?? p.ua,
          deviceId: at.device ?? p.device,
          token: token(ct),
          ...(c.bodyBytes === undefined ? {} : { bodyBytes: c.bodyBytes }),
        });
        ct += rng.int(20, 400);
      }
      t += Math.max(2 * S, rng.logNormal(40 * S, 1));
    }
    t += rng.logNormal(35 * MIN, 0.7);
  }
}

export function person(
  rng: Rng,
  id: string,
  org: Org,
  group: string,
  label: "legit" | "attack" = "legit",
  admin = false,
): Person {
  return {
    id,
    org,
    group,
    label,
    device: `dev-${rng.hex(16)}`,
    ua: rng.pick(BROWSER_UAS),
    mfa: org.mfa,
    admin,
  };
}

/** One working day: login in the morning, work until the evening, an admin visit now and then. */
export function workDay(
  ctx: Ctx,
  rng: Rng,
  p: Person,
  d: number,
  city: CityName,
  where: (t: number) => { ip: string; ua?: string; device?: string },
  spanHours = rng.normal(8.5, 0.75),
): { login: number; end: number } {
  const login = localMidnight(ctx, city, d) + rng.normal(8.75, 0.75) * H;
  const end = login + spanHours * H;
  browse(ctx, rng, p, login, end, where, (t) => sessionToken(p, login, t));
  if (p.admin && rng.chance(0.5))
    adminVisit(ctx, rng, p, login + rng.next() * (end - login - H), where);
  return { login, end };
}

/**
 * Admin console and billing: apps ask for a fresh login first (GitHub's "sudo mode", RFC 9470
 * step-up in the app itself), so these requests carry a recent auth_time.
 */
export function adminVisit(
  ctx: Ctx,
  rng: Rng,
  p: Person,
  at: number,
  where: (t: number) => { ip: string; ua?: string; device?: string },
): void {
  const login = at;
  const amr = p.mfa ? ["pwd", "mfa"] : ["pwd", "otp"];
  browse(
    ctx,
    rng,
    p,
    at,
    at + rng.int(3, 12) * MIN,
    where,
    (t) => sessionToken(p, login, t, amr),
    (r) =>
      r.chance(0.75)
        ? [{ method: "GET", path: "/admin/users" }]
        : r.chance(0.5)
          ? [{ method: "GET", path: "/billing/invoices" }]
          : [{ method: "POST", path: "/admin/users", bodyBytes: r.int(200, 600) }],
  );
}

export const n = (ctx: Ctx, base: number) => Math.max(1, Math.round(base * ctx.opts.scale));
