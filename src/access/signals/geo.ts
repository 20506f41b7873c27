import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import { distanceKm } from "../../geo/distance.js";
import type { GeoLocation } from "../../geo/geo-reader.js";
import type { SwapReading } from "../../state/store.js";
import { newMember } from "./new-member.js";
import { NO_OPS, NOTHING, type Signal, type SignalContext, section, tags } from "./signal.js";

const NOWHERE: GeoLocation = Object.freeze({});

const geoSection = section(
  "geo",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Points when the client IP has no location (unknown or private) on a route of medium or high sensitivity. */
      unknown_location_points: points.default(0),
    })
    .prefault({}),
);

const travelSection = section(
  "impossible_travel",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      max_kmh: z.number().positive().default(900),
      /** Shorter hops are ignored: geo databases place one network in several nearby cities. */
      min_distance_km: z.number().nonnegative().default(150),
      points: points.default(40),
      /** How long a subject's last location is remembered. */
      remember_seconds: z
        .number()
        .int()
        .positive()
        .default(30 * 86400),
    })
    .prefault({}),
);

const newCountrySection = section(
  "new_country",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      points: points.default(15),
      remember_seconds: z
        .number()
        .int()
        .positive()
        .default(90 * 86400),
      max_countries: z.number().int().positive().max(250).default(32),
    })
    .prefault({}),
);

const COUNTRY = {
  "geo.country_denied": "The client IP's country is not allowed for the caller's tier.",
  "geo.unknown_location": "The client IP has no known location, on a sensitive route.",
} as const;
const TRAVEL = {
  "geo.impossible_travel": "The subject moved between locations faster than max_kmh allows.",
} as const;
const NEW_COUNTRY = {
  "geo.new_country": "The subject is seen from a country it was not seen from before.",
} as const;

/**
 * Country allow/deny lists of the caller's tier: a denied (or not allowed) country blocks.
 * An unknown location scores only on sensitive routes and only when configured.
 */
export const countryPolicy: Signal<typeof COUNTRY, typeof geoSection> = {
  name: "geo.country",
  reasons: COUNTRY,
  policy: geoSection,
  data: [
    {
      source: "city",
      // a tier's country lists are set on purpose: without locations they would admit anyone
      missing: (doc) =>
        !doc.signals.geo.enabled
          ? []
          : Object.entries(doc.tiers).flatMap(([name, tier]) =>
              tier.countries === undefined
                ? []
                : [
                    `tiers.${name}.countries needs geolocation (RISKGATE_GEO is off or has no city data)`,
                  ],
            ),
      idle: (doc) =>
        doc.signals.geo.enabled && doc.signals.geo.unknown_location_points > 0
          ? "signals.geo"
          : undefined,
    },
  ],
  enabled: (ctx) => ctx.policy.doc.signals.geo.enabled && ctx.env.geo !== undefined,
  evaluate(ctx) {
    const country = ctx.location()?.country;
    const lists = ctx.tier.countries;
    if (country === undefined) {
      const points = ctx.policy.doc.signals.geo.unknown_location_points;
      if (points > 0 && ctx.route.sensitivity !== "low") {
        return { reasons: [{ code: "geo.unknown_location", points }] };
      }
      return NOTHING;
    }
    if (
      lists !== undefined &&
      ((lists.deny?.includes(country) ?? false) ||
        (lists.allow !== undefined && !lists.allow.includes(country)))
    ) {
      return { reasons: [], block: { code: "geo.country_denied", points: 0, detail: country } };
    }
    return NOTHING;
  },
};

/**
 * Encodes a sighting for the store: "lat,lon,epochSeconds,country"; the reader formatted the
 * coordinates once per decoded location.
 */
function sighting(loc: GeoLocation, now: number): string {
  const where =
    loc.coordinates ?? `${(loc.latitude ?? 0).toFixed(4)},${(loc.longitude ?? 0).toFixed(4)}`;
  return `${where},${Math.floor(now / 1000)},${loc.country ?? ""}`;
}

/** Reads back "lat,lon,epochSeconds,..." (anything malformed is no sighting). */
function parseSighting(value: string | null): { lat: number; lon: number; at: number } | undefined {
  if (value === null) return undefined;
  const c1 = value.indexOf(",");
  const c2 = value.indexOf(",", c1 + 1);
  if (c1 === -1 || c2 === -1) return undefined;
  const c3 = value.indexOf(",", c2 + 1);
  const field = (from: number, to: number) => {
    const text = value.slice(from, to === -1 ? undefined : to);
    return text === "" ? Number.NaN : Number(text);
  };
  const lat = field(0, c1);
  const lon = field(c1 + 1, c2);
  const at = field(c2 + 1, c3);
  if (!Number.isFinite(lat) || !Number.isFinite(lon) || !Number.isFinite(at)) return undefined;
  return { lat, lon, at };
}

/**
 * The client IP is on a hosting network (the policy's `signals.hosting_asn` list, when on): a
 * company VPN's or a proxy's exit, whose location is the data centre's, not the person's.
 * Entra ID's atypical travel ignores such VPN false positives; `ip.hosting_asn` scores them.
 */
function onHostingNetwork(ctx: SignalContext): boolean {
  const cfg = ctx.policy.doc.signals.hosting_asn;
  const asn = ctx.location()?.asn;
  if (!cfg.enabled || cfg.file === undefined || asn === undefined) return false;
  return ctx.env.asnList(cfg.file)?.has(asn) ?? false;
}

/**
 * Impossible travel: the subject's last trusted sighting (location and time) is read before
 * the verdict; the great-circle speed from it to this request above `max_kmh` scores. Hops
 * shorter than `min_distance_km` are geo-database noise; the first sighting is not travel.
 * Only a trusted (enforced allow) request replaces the sighting: a refused one from far away
 * is evidence against the subject, and the owner's next request is measured from home.
 */
export const impossibleTravel: Signal<typeof TRAVEL, typeof travelSection> = {
  name: "geo.impossible_travel",
  reasons: TRAVEL,
  policy: travelSection,
  data: [
    {
      source: "city",
      idle: (doc) =>
        doc.signals.impossible_travel.enabled ? "signals.impossible_travel" : undefined,
    },
  ],
  enabled: (ctx) => {
    if (!ctx.policy.doc.signals.impossible_travel.enabled || ctx.caller.anonymous) return false;
    const loc = ctx.location();
    return loc?.latitude !== undefined && loc.longitude !== undefined;
  },
  ops: (ctx) => [{ op: "get", key: { tag: tags.subject(ctx), name: "loc" } }],
  record(ctx, outcome) {
    if (!outcome.trusted || onHostingNetwork(ctx)) return NO_OPS;
    const cfg = ctx.policy.doc.signals.impossible_travel;
    return [
      {
        op: "swap",
        key: { tag: tags.subject(ctx), name: "loc" },
        value: sighting(ctx.location() ?? NOWHERE, ctx.now),
        ttlMs: cfg.remember_seconds * 1000,
      },
    ];
  },
  evaluate(ctx, results) {
    const previous = parseSighting((results[0] as SwapReading | undefined)?.previous ?? null);
    const loc = ctx.location();
    if (previous === undefined || loc?.latitude === undefined || loc.longitude === undefined) {
      return NOTHING;
    }
    if (onHostingNetwork(ctx)) return NOTHING;
    const cfg = ctx.policy.doc.signals.impossible_travel;
    const km = distanceKm(
      { latitude: previous.lat, longitude: previous.lon },
      { latitude: loc.latitude, longitude: loc.longitude },
    );
    if (km < cfg.min_distance_km) return NOTHING;
    // a sighting in the same second still has to cover the distance: count it as one second
    const hours = Math.max(1, ctx.now / 1000 - previous.at) / 3600;
    const kmh = km / hours;
    if (kmh <= cfg.max_kmh) return NOTHING;
    return {
      reasons: [
        {
          code: "geo.impossible_travel",
          points: cfg.points,
          detail: `${Math.round(km)} km at ${Math.round(kmh)} km/h`,
        },
      ],
    };
  },
};

/**
 * New country: the country joins the subject's bounded set; a new one (not the first) scores.
 * A hosting network's country is its data centre's (a VPN exit): it neither scores nor teaches.
 */
export const newCountry: Signal<typeof NEW_COUNTRY, typeof newCountrySection> = {
  ...newMember(NEW_COUNTRY, {
    code: "geo.new_country",
    set: "countries",
    section: "new_country",
    max: "max_countries",
    points: "points",
    member: (ctx) => (onHostingNetwork(ctx) ? undefined : ctx.location()?.country),
    detail: true,
  }),
  policy: newCountrySection,
  data: [
    {
      source: "city",
      idle: (doc) => (doc.signals.new_country.enabled ? "signals.new_country" : undefined),
    },
  ],
};
