import { CARRIERS, type CarrierName, VPN_LOCATIONS, type VpnLocationName } from "./networks.js";
import type { Rng } from "./rng.js";
import {
  type Ctx,
  DAY,
  H,
  isWeekday,
  localMidnight,
  MIN,
  n,
  type Person,
  pageCalls,
  person,
  port,
  S,
  sessionToken,
  workDay,
} from "./sim.js";
import { MOBILE_UAS, orgById } from "./world.js";

/** Where VPN-only workers' VPN client connects: the nearest locations first. */
const VPN_SETUPS: readonly (readonly [string, readonly VpnLocationName[]])[] = [
  ["acme", ["frankfurt", "berlin", "amsterdam"]],
  ["northwind", ["london", "amsterdam"]],
  ["lumen", ["paris", "frankfurt"]],
  ["harbor", ["newYork"]],
  ["maple", ["toronto", "newYork"]],
  ["tinyco", ["warsaw", "frankfurt"]],
  ["fjord", ["stockholm", "amsterdam"]],
  ["brightpath", ["frankfurt", "amsterdam"]],
];

/**
 * People who work only through a commercial VPN (always on, as privacy-minded people and some
 * companies' policies have it): every request leaves through a VPN exit on a hosting network.
 * The client connects when the laptop wakes and reconnects after sleep or a network change
 * (every two to three hours), each time to a server of the nearest location, now and then
 * ("fastest server") to the next one over.
 */
export function vpnOnlyWorkers(ctx: Ctx, rng: Rng): void {
  for (let i = 0; i < n(ctx, 6); i++) {
    const [orgId, locations] = VPN_SETUPS[i % VPN_SETUPS.length] as [string, VpnLocationName[]];
    const o = orgById(orgId);
    const r = rng.fork(`vpn-only-${i}`);
    const p = person(r, `u-${o.id}-vpnonly-${i}`, o, "vpn-only");
    const connect = () => {
      const loc =
        VPN_LOCATIONS[r.chance(0.8) ? (locations[0] as VpnLocationName) : r.pick(locations)];
      return r.pick(loc.ips);
    };
    for (let d = 0; d < ctx.opts.days; d++) {
      if (!(isWeekday(d) ? r.chance(0.92) : r.chance(0.1))) continue;
      let ip = connect();
      let reconnectAt = Number.NEGATIVE_INFINITY;
      workDay(
        ctx,
        r,
        p,
        d,
        o.city,
        (t) => {
          if (t > reconnectAt) {
            if (reconnectAt !== Number.NEGATIVE_INFINITY) ip = connect();
            reconnectAt = t + r.logNormal(2.5 * H, 0.5);
          }
          return { ip };
        },
        isWeekday(d) ? undefined : r.normal(1.5, 0.5),
      );
    }
  }
}

/** Mobile app users and their carrier: orgs whose people use the phone app a lot. */
const MOBILE_SETUPS: readonly (readonly [string, readonly CarrierName[]])[] = [
  ["acme", ["telefonicaDe", "vodafoneDe"]],
  ["harbor", ["tmobileUs", "verizonUs"]],
  ["brightpath", ["telefonicaDe"]],
  ["lumen", ["freeMobileFr"]],
  ["goldengate", ["tmobileUs"]],
  ["sakura", ["docomoJp"]],
];

/**
 * The phone app on a mobile network. Carriers put thousands of subscribers behind each public
 * address (carrier-grade NAT) and a phone gets another one when it re-attaches; the address
 * locates at the carrier's gateway city, not where the person is. The app stays signed in for
 * weeks (the refresh token renews hourly access tokens; `auth_time` is the app's sign-in), and
 * is used in short sessions through the day: commute, between meetings, evenings.
 */
export function mobileCgnatUsers(ctx: Ctx, rng: Rng): void {
  for (let i = 0; i < n(ctx, 10); i++) {
    const [orgId, carriers] = MOBILE_SETUPS[i % MOBILE_SETUPS.length] as [string, CarrierName[]];
    const o = orgById(orgId);
    const r = rng.fork(`mobile-${i}`);
    const p: Person = {
      ...person(r, `u-${o.id}-mobile-${i}`, o, "mobile-cgnat"),
      ua: r.pick(MOBILE_UAS),
    };
    const pool: readonly (readonly [string, string])[] =
      CARRIERS[carriers[i % carriers.length] as CarrierName].ips;
    const appLogin = ctx.opts.start - r.int(1, 20) * DAY - r.int(8, 20) * H;
    let ip = r.pick(pool)[0];
    for (let d = 0; d < ctx.opts.days; d++) {
      const sessions = isWeekday(d) ? r.int(3, 8) : r.int(0, 3);
      const midnight = localMidnight(ctx, o.city, d);
      for (let k = 0; k < sessions; k++) {
        let t = midnight + r.normal(7.5, 0.5) * H + r.next() * 14 * H;
        if (r.chance(0.6)) ip = r.pick(pool)[0];
        const end = t + r.logNormal(3 * MIN, 0.6);
        while (t < end) {
          const sourcePort = port(r);
          let ct = t;
          for (const c of pageCalls(r, p)) {
            ctx.emit({
              t: Math.round(ct),
              label: "legit",
              group: p.group,
              actor: p.id,
              ip,
              port: sourcePort,
              method: c.method,
              path: c.path,
              userAgent: p.ua,
              deviceId: p.device,
              token: sessionToken(p, appLogin, ct),
              ...(c.bodyBytes === undefined ? {} : { bodyBytes: c.bodyBytes }),
            });
            ct += r.int(20, 300);
          }
          t += Math.max(2 * S, r.logNormal(15 * S, 0.8));
        }
      }
    }
  }
}
