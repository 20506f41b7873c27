import { insiderExport, mfaTokenTakeover } from "./insiders.js";
import { batchJobs, sdkClients } from "./machines.js";
import type { SimRequest, TokenSpec } from "./model.js";
import { mobileCgnatUsers, vpnOnlyWorkers } from "./people.js";
import { BLOCKLISTED_IPS, CITIES, type CityName, CLOUD, type CloudName } from "./places.js";
import type { Rng } from "./rng.js";
import {
  browse,
  type Call,
  type Ctx,
  DAY,
  H,
  isWeekday,
  localMidnight,
  MIN,
  n,
  type Person,
  person,
  port,
  S,
  sec,
  sessionToken,
  type TrafficOptions,
  workDay,
} from "./sim.js";
import {
  AUTOMATION_UAS,
  BROWSER_UAS,
  cloudIps,
  MOBILE_UAS,
  ORGS,
  type Org,
  orgById,
} from "./world.js";

/**
 * The simulated week. Everything here is written from how such traffic looks in the world
 * (working hours, time zones, think times, request mixes, flight durations), never from a
 * policy's thresholds. The one number taken from outside is PUBLISHED_RATE_LIMIT_PER_MINUTE:
 * a pacing scraper reads the API's public rate-limit documentation, as real ones do.
 */
export type { TrafficOptions } from "./sim.js";

/** What the API's public docs promise a user per minute (pacing scrapers aim just under it). */
export const PUBLISHED_RATE_LIMIT_PER_MINUTE = 300;

// ---------------------------------------------------------------- legitimate populations

/** Hybrid workers at home: each with a residential address in the org's city. */
function browserUsers(ctx: Ctx, rng: Rng): void {
  const orgs = ORGS;
  for (let i = 0; i < n(ctx, 18); i++) {
    const o = orgs[i % orgs.length] as Org;
    const r = rng.fork(`browser-${i}`);
    const p = person(
      r,
      `u-${o.id}-home-${i}`,
      o,
      "browser",
      "legit",
      o.tier === "enterprise" && i < 12,
    );
    const city = CITIES[o.city];
    const ip = city.ips[(i + 1) % city.ips.length] as string;
    for (let d = 0; d < ctx.opts.days; d++) {
      if (isWeekday(d) ? r.chance(0.92) : r.chance(0.08)) {
        workDay(
          ctx,
          r,
          p,
          d,
          o.city,
          () => ({ ip }),
          isWeekday(d) ? undefined : r.normal(1.5, 0.5),
        );
      }
    }
  }
}

/** Colleagues in the office, all behind the office's one NAT address. */
function officeUsers(ctx: Ctx, rng: Rng): void {
  const offices = ORGS.filter((o) =>
    ["acme", "northwind", "harbor", "lumen", "sakura"].includes(o.id),
  );
  for (const o of offices) {
    for (let i = 0; i < n(ctx, 3); i++) {
      const r = rng.fork(`office-${o.id}-${i}`);
      const p = person(
        r,
        `u-${o.id}-office-${i}`,
        o,
        "office-nat",
        "legit",
        o.tier === "enterprise" && i === 0,
      );
      for (let d = 0; d < ctx.opts.days; d++) {
        if (isWeekday(d) && r.chance(0.9))
          workDay(ctx, r, p, d, o.city, () => ({ ip: o.officeIp }));
      }
    }
  }
}

/** Where commuters' phones locate on the train: the next city from the office (30-70 km). */
export const COMMUTES: readonly (readonly [orgId: string, mobileCity: CityName])[] = [
  ["brightpath", "augsburg"],
  ["harbor", "newark"],
  ["goldengate", "sanJose"],
];

/** Commuters: on the train their phone's mobile address locates in the next city. */
function commuters(ctx: Ctx, rng: Rng): void {
  const pairs = COMMUTES;
  for (let i = 0; i < n(ctx, 4); i++) {
    const [orgId, mobileCity] = pairs[i % pairs.length] as [string, CityName];
    const o = orgById(orgId);
    const r = rng.fork(`commuter-${i}`);
    const p = person(r, `u-${o.id}-commuter-${i}`, o, "commuter");
    const phone = `dev-${r.hex(16)}`;
    const phoneUa = r.pick(MOBILE_UAS);
    const mobileIp = CITIES[mobileCity].ips[i % CITIES[mobileCity].ips.length] as string;
    for (let d = 0; d < ctx.opts.days; d++) {
      if (!isWeekday(d) || !r.chance(0.9)) continue;
      const leave = localMidnight(ctx, o.city, d) + r.normal(7.25, 0.3) * H;
      const arrive = leave + r.normal(50, 8) * MIN;
      const endWork = arrive + r.normal(8.75, 0.5) * H;
      const home = endWork + r.normal(50, 8) * MIN;
      const login = leave;
      const tok = (t: number) => sessionToken(p, login, t);
      const onPhone = () => ({ ip: mobileIp, ua: phoneUa, device: phone });
      browse(ctx, r, p, leave, arrive, onPhone, tok);
      browse(ctx, r, p, arrive, endWork, () => ({ ip: o.officeIp }), tok);
      browse(ctx, r, p, endWork, home, onPhone, tok);
    }
  }
}

/** Users who switch the company VPN (exit on a cloud host in another city) on and off. */
function vpnUsers(ctx: Ctx, rng: Rng): void {
  const setups: [string, CloudName][] = [
    ["acme", "awsFrankfurt"],
    ["lumen", "doAmsterdam"],
    ["fjord", "azureAmsterdam"],
    ["goldengate", "awsVirginia"],
  ];
  for (let i = 0; i < n(ctx, 4); i++) {
    const [orgId, exit] = setups[i % setups.length] as [string, CloudName];
    const o = orgById(orgId);
    const r = rng.fork(`vpn-${i}`);
    const p = person(r, `u-${o.id}-vpn-${i}`, o, "vpn");
    const home = CITIES[o.city].ips[(i + 2) % CITIES[o.city].ips.length] as string;
    const vpnIp = CLOUD[exit].ips[i % CLOUD[exit].ips.length] as string;
    for (let d = 0; d < ctx.opts.days; d++) {
      if (!isWeekday(d) || !r.chance(0.9)) continue;
      // The VPN goes on for some hours (internal tools), off for video calls.
      let on = r.chance(0.5);
      let switchAt = 0;
      workDay(ctx, r, p, d, o.city, (t) => {
        if (t > switchAt) {
          on = !on;
          switchAt = t + r.logNormal(90 * MIN, 0.6);
        }
        return { ip: on ? vpnIp : home };
      });
    }
  }
}

/** Real travellers: work at home, fly (plausible block times plus airports), work abroad, fly back. */
function travellers(ctx: Ctx, rng: Rng): void {
  const trips: [string, CityName, number][] = [
    ["acme", "newYork", 9],
    ["northwind", "singapore", 13],
    ["harbor", "london", 7],
    ["merlion", "sydney", 8],
    ["fjord", "tokyo", 14],
    ["goldengate", "berlin", 11],
  ];
  for (let i = 0; i < n(ctx, 4); i++) {
    const [orgId, dest, flightH] = trips[i % trips.length] as [string, CityName, number];
    const o = orgById(orgId);
    const r = rng.fork(`traveller-${i}`);
    const p = person(
      r,
      `u-${o.id}-traveller-${i}`,
      o,
      "traveller",
      "legit",
      o.tier === "enterprise",
    );
    const homeIp = CITIES[o.city].ips[(i + 3) % CITIES[o.city].ips.length] as string;
    const hotelIp = CITIES[dest].ips[i % CITIES[dest].ips.length] as string;
    const outDay = 1 + (i % 2); // Tuesday or Wednesday
    const backDay = outDay + 2;
    for (let d = 0; d < ctx.opts.days; d++) {
      if (!isWeekday(d)) continue;
      if (d < outDay || d > backDay + 1) workDay(ctx, r, p, d, o.city, () => ({ ip: homeIp }));
      else if (d === outDay) {
        // Morning at home, to the airport at noon; 2 h airport each end.
        const { end } = workDay(ctx, r, p, d, o.city, () => ({ ip: homeIp }), 3);
        const landed = end + (2 + flightH + 1.5) * H;
        const login = landed;
        browse(
          ctx,
          r,
          p,
          landed,
          landed + 1.5 * H,
          () => ({ ip: hotelIp }),
          (t) => sessionToken(p, login, t),
        );
      } else if (d < backDay || d === backDay) {
        workDay(ctx, r, p, d, dest, () => ({ ip: hotelIp }), d === backDay ? 4 : undefined);
      } else {
        // Back home the day after the return flight.
        workDay(ctx, r, p, d, o.city, () => ({ ip: homeIp }), 5);
      }
    }
  }
}

/** First day at work: the account starts mid-week; onboarding explores the whole app. */
function newUsers(ctx: Ctx, rng: Rng): void {
  for (let i = 0; i < n(ctx, 4); i++) {
    const o = ORGS[(i * 5 + 1) % ORGS.length] as Org;
    const r = rng.fork(`new-${i}`);
    const p = person(r, `u-${o.id}-new-${i}`, o, "new-user");
    const first = Math.min(ctx.opts.days - 1, 2 + (i % 2));
    const ip = CITIES[o.city].ips[(i + 4) % CITIES[o.city].ips.length] as string;
    for (let d = first; d < ctx.opts.days; d++) {
      if (isWeekday(d))
        workDay(ctx, r, p, d, o.city, () => ({ ip: d === first ? o.officeIp : ip }));
    }
  }
}

// ---------------------------------------------------------------- attacks

interface Attacker {
  readonly ctx: Ctx;
  readonly rng: Rng;
  readonly group: string;
  readonly actor: string;
}

function attack(
  a: Attacker,
  t: number,
  ip: string,
  ua: string,
  token: TokenSpec,
  call: Call,
  device?: string,
  account?: string,
): void {
  a.ctx.emit({
    t: Math.round(t),
    label: "attack",
    group: a.group,
    actor: a.actor,
    ip,
    port: port(a.rng),
    method: call.method,
    path: call.path,
    userAgent: ua,
    token,
    ...(device ? { deviceId: device } : {}),
    ...(call.bodyBytes === undefined ? {} : { bodyBytes: call.bodyBytes }),
    ...(account === undefined ? {} : { reaction: "stuffing", run: `${a.actor}:${account}` }),
  });
}

/**
 * Accounts whose passwords are in combo lists: mostly dormant accounts of real customers. A
 * password alone yields a token only where the org does not enforce MFA; phishing kits that relay
 * the MFA step work everywhere.
 */
function victimAccount(rng: Rng, k: number, mfaRelayed: boolean): { sub: string; org: Org } {
  const orgs = ORGS.filter((o) => mfaRelayed || !o.mfa);
  const o = orgs[rng.int(0, orgs.length - 1)] as Org;
  return { sub: `u-${o.id}-acct-${k}`, org: o };
}

/**
 * Credential stuffing: the IdP accepts the leaked password (a few percent of a combo list) and
 * the tool then checks what each account can reach: profile, projects, billing.
 */
function stuffing(
  a: Attacker,
  start: number,
  ips: readonly string[],
  accounts: number,
  mfa: boolean,
): void {
  const r = a.rng;
  let t = start;
  for (let k = 0; k < accounts; k++) {
    const v = victimAccount(r, r.int(0, 5000), mfa);
    const ip = r.pick(ips);
    const ua = r.pick(BROWSER_UAS);
    const login = t;
    const token: TokenSpec = {
      sub: v.sub,
      org: v.org.id,
      tier: v.org.tier,
      iat: sec(login),
      exp: sec(login + H),
      amr: mfa ? ["pwd", "mfa"] : ["pwd"],
      authTime: sec(login),
    };
    const calls: Call[] = [
      { method: "GET", path: "/v1/me" },
      { method: "GET", path: "/v1/projects" },
      ...(mfa
        ? [
            { method: "GET", path: `/v1/reports/${r.hex(8)}/export` },
            { method: "GET", path: "/v1/projects/1/members" },
          ]
        : []),
      ...(r.chance(0.4) ? [{ method: "GET", path: "/billing/invoices" }] : []),
    ];
    let ct = t + r.int(500, 3000);
    for (const c of calls) {
      attack(a, ct, ip, ua, token, c, undefined, v.sub);
      ct += r.int(150, 1200);
    }
    t += mfa ? r.logNormal(20 * MIN, 0.8) : r.logNormal(12 * S, 0.6);
  }
}

/** A thief replays a victim's refresh token and works the account during the victim's day. */
function stolenToken(
  a: Attacker,
  victim: Person,
  victimLogin: number,
  thiefIps: readonly string[],
): void {
  const r = a.rng;
  const ua = r.pick(BROWSER_UAS);
  const device = `dev-${r.hex(16)}`;
  let t = victimLogin + r.normal(2, 0.5) * H;
  const end = t + r.normal(3, 0.5) * H;
  const ip = r.pick(thiefIps);
  while (t < end) {
    const token = sessionToken(victim, victimLogin, t);
    const c: Call = r.chance(0.25)
      ? { method: "GET", path: `/v1/reports/${r.hex(8)}/export` }
      : r.chance(0.5)
        ? { method: "GET", path: `/v1/projects/${r.int(1, 40)}/tasks?page=${r.int(1, 20)}` }
        : { method: "GET", path: `/v1/search?q=${r.hex(5)}` };
    attack(a, t, ip, ua, token, c, device);
    t += r.logNormal(25 * S, 0.8);
  }
}

/** A victim who works as usual on the day of the theft (the owner keeps working). */
function victimWorking(
  ctx: Ctx,
  rng: Rng,
  id: string,
  o: Org,
  d: number,
): { p: Person; login: number } {
  const p = person(rng, id, o, "browser");
  const ip = CITIES[o.city].ips[CITIES[o.city].ips.length - 1] as string;
  const { login } = workDay(ctx, rng, p, d, o.city, () => ({ ip }));
  return { p: { ...p, label: "attack" }, login };
}

function scrapePath(r: Rng, k: number): Call {
  return r.chance(0.8)
    ? { method: "GET", path: `/v1/projects/${1 + (k % 40)}/tasks?page=${Math.floor(k / 40) + 1}` }
    : { method: "GET", path: `/v1/tasks/${10000 + k}` };
}

/** The attacker's own (or a bought) account, logged in as its org's IdP requires. */
function ownAccount(id: string, o: Org, t: number): TokenSpec {
  const login = Math.floor(t / H) * H;
  return {
    sub: id,
    org: o.id,
    tier: o.tier,
    iat: sec(login),
    exp: sec(login + H),
    amr: o.mfa ? ["pwd", "mfa"] : ["pwd"],
    authTime: sec(login),
  };
}

function attacks(ctx: Ctx, rng: Rng): void {
  const { start, days } = ctx.opts;
  const mk = (group: string, i: number): Attacker => ({
    ctx,
    rng: rng.fork(`${group}-${i}`),
    group,
    actor: `${group}-${i}`,
  });
  const day = (d: number) => start + Math.min(d, days - 1) * DAY;

  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("stuffing-one-ip", i);
    stuffing(
      a,
      day(i * 2) + a.rng.int(0, 23) * H,
      [CLOUD.ovhRoubaix.ips[i % 5] as string],
      150,
      false,
    );
  }
  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("stuffing-botnet", i);
    const bots: CityName[] = [
      "hanoi",
      "jakarta",
      "saoPaulo",
      "mumbai",
      "moscow",
      "kyiv",
      "shanghai",
      "bengaluru",
      "rio",
    ];
    const ips = bots.flatMap((b) => CITIES[b].ips.slice(0, 3));
    stuffing(a, day(1 + i * 2) + a.rng.int(0, 23) * H, ips, 200, false);
  }
  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("stuffing-mfa", i);
    // Adversary-in-the-middle phishing kits relay the MFA step and keep the session.
    stuffing(a, day(2 + i) + 8 * H, [CLOUD.doFrankfurt.ips[i % 4] as string], 25, true);
  }
  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("stolen-token-abroad", i);
    const o = orgById(i % 2 === 0 ? "acme" : "harbor");
    const v = victimWorking(ctx, a.rng, `u-${o.id}-victim-${i}`, o, 1 + i);
    const thief: CityName[] = i % 2 === 0 ? ["saoPaulo", "jakarta"] : ["moscow", "hanoi"];
    stolenToken(
      a,
      v.p,
      v.login,
      thief.flatMap((c) => [...CITIES[c].ips]),
    );
  }
  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("stolen-token-home-country", i);
    const o = orgById(i % 2 === 0 ? "acme" : "harbor");
    const v = victimWorking(ctx, a.rng, `u-${o.id}-victim-home-${i}`, o, 3 + i);
    // Residential proxy in the owner's country.
    const proxy: CityName = i % 2 === 0 ? "hamburg" : "chicago";
    stolenToken(a, v.p, v.login, CITIES[proxy].ips);
  }
  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("scrape-unpaced", i);
    const o = orgById(i % 2 === 0 ? "lumen" : "goldengate");
    const id = `u-${o.id}-scraper-${i}`;
    let t = day(1 + i * 3) + a.rng.int(0, 23) * H;
    const ip = CLOUD.doFrankfurt.ips[(i + 1) % 4] as string;
    for (let k = 0; k < 3000; k++) {
      attack(a, t, ip, "python-requests/2.32.3", ownAccount(id, o, t), scrapePath(a.rng, k));
      t += a.rng.exp(40); // about 25 requests a second, as fast as a thread pool goes
    }
  }
  for (let i = 0; i < n(ctx, 1); i++) {
    const a = mk("scrape-paced", i);
    const o = orgById("fjord");
    const id = `u-${o.id}-paced-${i}`;
    const ua = a.rng.pick(BROWSER_UAS);
    const ip = CITIES.stockholm.ips[3] as string;
    let t = day(2) + 9 * H;
    const gap = MIN / (0.9 * PUBLISHED_RATE_LIMIT_PER_MINUTE);
    for (let k = 0; k < 30 * 0.9 * PUBLISHED_RATE_LIMIT_PER_MINUTE; k++) {
      attack(a, t, ip, ua, ownAccount(id, o, t), scrapePath(a.rng, k), `dev-${id}`);
      t += gap * (0.9 + 0.2 * a.rng.next());
    }
  }
  for (let i = 0; i < n(ctx, 1); i++) {
    const a = mk("scrape-cloud", i);
    const o = orgById("merlion");
    const id = `u-${o.id}-cloudscraper-${i}`;
    const ips = cloudIps([
      "awsVirginia",
      "awsDublin",
      "awsSingapore",
      "gcpIowa",
      "gcpSaoPaulo",
      "azureVirginia",
      "doSingapore",
      "hetznerHelsinki",
      "ovhRoubaix",
    ]);
    let t = day(4) + 14 * H;
    for (let k = 0; k < 2700; k++) {
      attack(
        a,
        t,
        a.rng.pick(ips),
        a.rng.pick(BROWSER_UAS),
        ownAccount(id, o, t),
        scrapePath(a.rng, k),
      );
      t += a.rng.exp(330);
    }
  }
  for (let i = 0; i < n(ctx, 2); i++) {
    const a = mk("automation-ua", i);
    const o = orgById(i % 2 === 0 ? "northwind" : "paulista");
    const id = `u-${o.id}-harvest-${i}`;
    const ip = CITIES[o.city].ips[2] as string;
    const ua = AUTOMATION_UAS[i % AUTOMATION_UAS.length] as string;
    let t = day(3) + 20 * H;
    for (let k = 0; k < 900; k++) {
      attack(
        a,
        t,
        ip,
        ua,
        ownAccount(id, o, t),
        k % 7 === 0
          ? { method: "GET", path: `/v1/reports/${a.rng.hex(8)}/export` }
          : scrapePath(a.rng, k),
      );
      t += a.rng.logNormal(1.5 * S, 0.4);
    }
  }
  for (let i = 0; i < n(ctx, 1); i++) {
    const a = mk("blocklisted-ip", i);
    const o = orgById("acme");
    const id = `u-${o.id}-acct-${9000 + i}`;
    let t = day(5) + 22 * H;
    const ua = a.rng.pick(BROWSER_UAS);
    for (let k = 0; k < 300; k++) {
      attack(a, t, a.rng.pick(BLOCKLISTED_IPS), ua, ownAccount(id, o, t), scrapePath(a.rng, k));
      t += a.rng.logNormal(8 * S, 0.7);
    }
  }
  for (let i = 0; i < n(ctx, 1); i++) {
    // Slow takeover of an enterprise admin's account (the org signs in with a password only):
    // a phished password, used at the victim's night through a residential address abroad.
    const a = mk("slow-takeover", i);
    const o = orgById("maple");
    const id = `u-${o.id}-home-10`;
    const ip = CITIES.boston.ips[1] as string;
    const ua = a.rng.pick(BROWSER_UAS);
    const lastDay = Math.min(days - 1, 4);
    for (let d = 0; d <= lastDay; d++) {
      const login = localMidnight(ctx, o.city, d) + a.rng.normal(23, 0.5) * H;
      const tok = (t: number): TokenSpec => ({
        ...sessionToken({ id, org: o } as Person, login, t, ["pwd"]),
      });
      const final = d === lastDay;
      const calls: Call[] = final
        ? [
            { method: "GET", path: "/admin/users" },
            { method: "POST", path: "/admin/users", bodyBytes: 420 },
            { method: "PUT", path: "/admin/users/u-backdoor", bodyBytes: 300 },
            { method: "GET", path: "/billing/invoices" },
            { method: "PUT", path: "/billing/plan", bodyBytes: 200 },
            ...Array.from({ length: 12 }, () => ({
              method: "GET",
              path: `/v1/reports/${a.rng.hex(8)}/export`,
            })),
          ]
        : Array.from({ length: a.rng.int(8, 20) }, (_, k) =>
            k % 5 === 4
              ? { method: "GET", path: "/admin/users" }
              : { method: "GET", path: `/v1/projects/${a.rng.int(1, 40)}` },
          );
      let t = login;
      for (const c of calls) {
        attack(a, t, ip, ua, tok(t), c);
        t += a.rng.logNormal(40 * S, 0.8);
      }
    }
  }
}

/** Every population and attack family, for the README of the evaluation and the tests. */
export const POPULATIONS = [
  "browser",
  "office-nat",
  "commuter",
  "vpn",
  "traveller",
  "new-user",
  "vpn-only",
  "mobile-cgnat",
  "sdk-client",
  "sdk-client-cloud",
  "batch",
] as const;

/** The populations of machine clients (client-credentials tokens), reported as their own row. */
export const MACHINE_POPULATIONS: readonly string[] = ["sdk-client", "sdk-client-cloud", "batch"];
export const FAMILIES = [
  "stuffing-one-ip",
  "stuffing-botnet",
  "stuffing-mfa",
  "stolen-token-abroad",
  "stolen-token-home-country",
  "scrape-unpaced",
  "scrape-paced",
  "scrape-cloud",
  "automation-ua",
  "blocklisted-ip",
  "slow-takeover",
  "insider-export",
  "mfa-token-takeover",
] as const;

/** The whole week, sorted by time (ties keep a stable order). */
export function simulate(rng: Rng, opts: TrafficOptions): SimRequest[] {
  const out: SimRequest[] = [];
  const end = opts.start + opts.days * DAY;
  const ctx: Ctx = {
    opts,
    emit: (req) => {
      if (req.t >= opts.start && req.t < end) out.push(req);
    },
  };
  browserUsers(ctx, rng.fork("browser"));
  officeUsers(ctx, rng.fork("office"));
  commuters(ctx, rng.fork("commuter"));
  vpnUsers(ctx, rng.fork("vpn"));
  travellers(ctx, rng.fork("traveller"));
  newUsers(ctx, rng.fork("new"));
  vpnOnlyWorkers(ctx, rng.fork("vpn-only"));
  mobileCgnatUsers(ctx, rng.fork("mobile"));
  sdkClients(ctx, rng.fork("sdk"));
  batchJobs(ctx, rng.fork("batch"));
  attacks(ctx, rng.fork("attacks"));
  insiderExport(ctx, rng.fork("insider"));
  mfaTokenTakeover(ctx, rng.fork("mfa-takeover"));
  const indexed = out.map((r, i) => ({ r, i }));
  indexed.sort((a, b) => a.r.t - b.r.t || a.i - b.i);
  return indexed.map((x) => x.r);
}
