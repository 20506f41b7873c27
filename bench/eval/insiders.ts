import { CITIES, type CityName } from "./places.js";
import type { Rng } from "./rng.js";
import {
  browse,
  type Call,
  type Ctx,
  H,
  isWeekday,
  localMidnight,
  n,
  type Person,
  pageCalls,
  person,
  port,
  S,
  sessionToken,
  workDay,
} from "./sim.js";
import { BROWSER_UAS, orgById } from "./world.js";

/** An analyst's day: the web app's screens plus the report exports their work is made of. */
function analystCalls(rng: Rng, p: Person): Call[] {
  return rng.chance(0.05)
    ? [{ method: "GET", path: `/v1/reports/${rng.hex(8)}/export` }]
    : pageCalls(rng, p);
}

const isExport = (path: string) => /^\/v1\/reports\/[^/]+\/export/.test(path);

/**
 * The insider: an analyst who exports reports every working day, with their own token, device
 * and home network. On the night before they leave they log in again (with their own MFA where
 * the org asks for it) and pull several times their usual daily export volume, one export after
 * the other, with a look at the member lists. Their daytime work is legitimate traffic of the
 * `browser` population; the night's requests are the attack. They can answer a step-up: it is
 * their own account.
 */
export function insiderExport(ctx: Ctx, rng: Rng): void {
  const setups: [string, number][] = [
    ["northwind", 3],
    ["lumen", 4],
  ];
  for (let i = 0; i < n(ctx, 2); i++) {
    const [orgId, lastDay] = setups[i % setups.length] as [string, number];
    const o = orgById(orgId);
    const r = rng.fork(`insider-${i}`);
    const p = person(r, `u-${o.id}-analyst-${i}`, o, "browser");
    const home = CITIES[o.city].ips[(i + 5) % CITIES[o.city].ips.length] as string;
    let exports = 0;
    let days = 0;
    const counting: Ctx = {
      opts: ctx.opts,
      emit: (req) => {
        if (isExport(req.path)) exports++;
        ctx.emit(req);
      },
    };
    const night = Math.min(lastDay, ctx.opts.days - 1);
    for (let d = 0; d <= night; d++) {
      if (!isWeekday(d)) continue;
      dayOfWork(counting, r, p, d, o.city, home);
      days++;
    }
    const usualDaily = Math.max(5, exports / Math.max(1, days));
    const target = Math.round(usualDaily * r.normal(4, 0.5));
    const login = localMidnight(ctx, o.city, night) + r.normal(23.25, 0.3) * H;
    let t = login + r.int(20, 90) * S;
    const attacker: Person = { ...p, label: "attack", group: "insider-export" };
    for (let k = 0; k < target; k++) {
      const calls: Call[] =
        k % 10 === 0
          ? [{ method: "GET", path: `/v1/projects/${r.int(1, 40)}/members` }]
          : [{ method: "GET", path: `/v1/reports/${r.hex(8)}/export` }];
      for (const c of calls) {
        ctx.emit({
          t: Math.round(t),
          label: "attack",
          group: attacker.group,
          actor: p.id,
          ip: home,
          port: port(r),
          method: c.method,
          path: c.path,
          userAgent: p.ua,
          deviceId: p.device,
          token: sessionToken(attacker, login, t),
          reaction: "person",
        });
        t += r.logNormal(12 * S, 0.5);
      }
    }
  }
}

function dayOfWork(
  ctx: Ctx,
  r: Rng,
  p: Person,
  d: number,
  city: CityName,
  ip: string,
): { login: number; end: number } {
  const login = localMidnight(ctx, city, d) + r.normal(8.75, 0.75) * H;
  const end = login + r.normal(8.5, 0.75) * H;
  browse(
    ctx,
    r,
    p,
    login,
    end,
    () => ({ ip }),
    (t) => sessionToken(p, login, t),
    analystCalls,
  );
  return { login, end };
}

/** The phished admin's week: Monday's afternoon login went through the kit; they keep working. */
function victimWeek(
  ctx: Ctx,
  r: Rng,
  victim: Person,
  city: CityName,
  home: string,
  phishedAt: number,
): void {
  for (let d = 0; d < ctx.opts.days; d++) {
    if (!isWeekday(d)) continue;
    if (d > 0) {
      workDay(ctx, r, victim, d, city, () => ({ ip: home }));
      continue;
    }
    // the morning as usual, then the phished login in the afternoon, used until evening
    const morning = (phishedAt - localMidnight(ctx, city, 0)) / H - 8.75;
    workDay(ctx, r, victim, d, city, () => ({ ip: home }), morning);
    browse(
      ctx,
      r,
      victim,
      phishedAt,
      phishedAt + 2.5 * H,
      () => ({ ip: home }),
      (t) => sessionToken(victim, phishedAt, t, ["pwd", "mfa"]),
    );
  }
}

/**
 * A slow takeover with a session stolen by an adversary-in-the-middle phishing kit: the victim,
 * an enterprise admin whose org signs in with MFA, logged in through the kit one afternoon, so
 * the stolen session carries `amr` with mfa and that login's `auth_time`, and the victim goes on
 * working with it. The attacker replays the session's refresh token from their own browser (its
 * own device id) through a residential proxy in a neighbouring country, on five nights at the
 * victim's 22:00-01:00: a little reading, then admin users, billing and report exports. They
 * cannot log in again: they have neither the password's second factor nor the victim's device.
 */
export function mfaTokenTakeover(ctx: Ctx, rng: Rng): void {
  const setups: [string, CityName][] = [
    ["harbor", "toronto"],
    ["northwind", "amsterdam"],
  ];
  for (let i = 0; i < n(ctx, 1); i++) {
    const [orgId, proxyCity] = setups[i % setups.length] as [string, CityName];
    const o = orgById(orgId);
    const r = rng.fork(`mfa-takeover-${i}`);
    const victim = person(r, `u-${o.id}-admin-${i}`, o, "browser", "legit", true);
    const home = CITIES[o.city].ips[(i + 4) % CITIES[o.city].ips.length] as string;
    const phishedAt = localMidnight(ctx, o.city, 0) + r.normal(15.5, 0.5) * H;
    victimWeek(ctx, r, victim, o.city, home, phishedAt);
    const thief: Person = {
      ...victim,
      label: "attack",
      group: "mfa-token-takeover",
      device: `dev-${r.hex(16)}`,
      ua: r.pick(BROWSER_UAS),
    };
    const proxy = CITIES[proxyCity].ips[(i + 1) % CITIES[proxyCity].ips.length] as string;
    const nights = Math.min(5, ctx.opts.days - 1);
    for (let d = 1; d <= nights; d++) {
      const last = d === nights;
      let t = localMidnight(ctx, o.city, d - 1) + r.normal(22.5, 0.5) * H;
      const calls: Call[] = last
        ? [
            { method: "GET", path: "/admin/users" },
            { method: "POST", path: "/admin/users", bodyBytes: 410 },
            { method: "GET", path: "/billing/invoices" },
            ...Array.from({ length: 15 }, () => ({
              method: "GET",
              path: `/v1/reports/${r.hex(8)}/export`,
            })),
          ]
        : Array.from({ length: r.int(6, 15) }, (_, k) =>
            k % 4 === 3
              ? { method: "GET", path: "/admin/users" }
              : { method: "GET", path: `/v1/projects/${r.int(1, 40)}/members` },
          );
      for (const c of calls) {
        ctx.emit({
          t: Math.round(t),
          label: "attack",
          group: thief.group,
          actor: `mfa-token-takeover-${i}`,
          ip: proxy,
          port: port(r),
          method: c.method,
          path: c.path,
          userAgent: thief.ua,
          deviceId: thief.device,
          token: sessionToken(thief, phishedAt, t, ["pwd", "mfa"]),
          reaction: "attacker",
          ...(c.bodyBytes === undefined ? {} : { bodyBytes: c.bodyBytes }),
        });
        t += r.logNormal(45 * S, 0.7);
      }
    }
  }
}
