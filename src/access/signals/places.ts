import { createHash } from "node:crypto";
import { z } from "zod";
import { points, seconds } from "../../config/policy-fields.js";
import type { CountReading, MemberReading, StoreOp } from "../../state/store.js";
import { networkOf } from "./network.js";
import {
  NO_OPS,
  NOTHING,
  type Signal,
  type SignalContext,
  section,
  tagOf,
  tags,
} from "./signal.js";

const placesSection = section(
  "places",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      window_seconds: z.number().int().positive().default(3600),
      /** More distinct countries than this per subject or token in the window scores. */
      max_countries: z.number().int().nonnegative().default(1),
      /** More distinct ASNs than this (0 = not counted). */
      max_asns: z.number().int().nonnegative().default(2),
      /** More distinct /24 (IPv4) or /48 (IPv6) networks than this (0 = not counted). */
      max_networks: z.number().int().nonnegative().default(4),
      points: points.default(50),
      /** Count per token too (a hash of its jti, or of its subject and iat). */
      per_token: z.boolean().default(true),
      /** An authentication younger than this clears the signal (the caller proved itself there). */
      fresh_auth_seconds: seconds.default(900),
      /** How long a trusted network (one an allowed request came from) is remembered. */
      remember_seconds: z
        .number()
        .int()
        .positive()
        .default(30 * 86400),
      max_known_networks: z.number().int().positive().max(1000).default(32),
    })
    .prefault({}),
);

const REASONS = {
  "geo.places":
    "The subject or its token is in use from more countries, ASNs or networks at once than allowed, from a network it is not trusted on.",
} as const;

/**
 * A stable, non-secret id of the credential: a hash of its `jti`, else of its subject and
 * issue time (two tokens of one subject issued apart differ). Never the token itself.
 */
export function tokenIdOf(ctx: SignalContext): string {
  const { jti, iat } = ctx.claims;
  const basis =
    typeof jti === "string" && jti !== ""
      ? `jti:${jti}`
      : `sub:${ctx.caller.subject}:${String(iat)}`;
  return createHash("sha256").update(basis).digest("base64url").slice(0, 22);
}

/** The dimensions counted per place, in op order. */
const DIMENSIONS = ["countries", "asns", "networks"] as const;

/**
 * One token, many places: distinct countries, ASNs and networks (/24, /48) per subject and per
 * token in a sliding window. A stolen token used in parallel from far away shows as two places
 * at once, where impossible travel, comparing each request with the last one only, would see
 * a flight every minute and blame the owner too. The owner is kept out of the blame: a request
 * from one of the subject's trusted networks (learned only from allowed requests) does not
 * score, nor does one whose authentication is fresh (the caller just proved itself there).
 * Every request counts as a place, refused ones too: a refused sighting is evidence.
 */
export const places: Signal<typeof REASONS, typeof placesSection> = {
  name: "geo.places",
  reasons: REASONS,
  policy: placesSection,
  enabled: (ctx) =>
    ctx.policy.doc.signals.places.enabled &&
    !ctx.caller.anonymous &&
    networkOf(ctx.req.clientIp) !== undefined,
  ops(ctx) {
    const cfg = ctx.policy.doc.signals.places;
    const windowMs = cfg.window_seconds * 1000;
    const loc = ctx.location();
    const values = [loc?.country ?? "", loc?.asn === undefined ? "" : `AS${loc.asn}`];
    const network = networkOf(ctx.req.clientIp) ?? "";
    const ops: StoreOp[] = [
      { op: "has", key: { tag: tags.subject(ctx), name: "nets" }, member: network },
    ];
    const owners = [tags.subject(ctx)];
    if (cfg.per_token) owners.push(tagOf.token(tokenIdOf(ctx)));
    for (const tag of owners) {
      DIMENSIONS.forEach((dim, i) => {
        // an unknown country or ASN is no place: count it as the network's own
        const member = i < 2 ? values[i] || `?${network}` : network;
        ops.push({ op: "distinct", key: { tag, name: `pl:${dim}` }, member, windowMs });
      });
    }
    return ops;
  },
  record(ctx, outcome) {
    if (!outcome.trusted) return NO_OPS;
    const cfg = ctx.policy.doc.signals.places;
    return [
      {
        op: "member",
        key: { tag: tags.subject(ctx), name: "nets" },
        member: networkOf(ctx.req.clientIp) ?? "",
        ttlMs: cfg.remember_seconds * 1000,
        max: cfg.max_known_networks,
      },
    ];
  },
  evaluate(ctx, results) {
    const cfg = ctx.policy.doc.signals.places;
    const known = results[0] as MemberReading | undefined;
    if (known === undefined || !known.isNew) return NOTHING;
    const authTime = ctx.caller.authTime;
    if (authTime !== undefined && ctx.now / 1000 - authTime <= cfg.fresh_auth_seconds) {
      return NOTHING;
    }
    const limits = [cfg.max_countries, cfg.max_asns, cfg.max_networks];
    const owners = cfg.per_token ? ["token", "subject"] : ["subject"];
    for (const owner of owners) {
      const from = owner === "token" ? 4 : 1;
      for (let i = 0; i < DIMENSIONS.length; i++) {
        const count = (results[from + i] as CountReading | undefined)?.count ?? 0;
        const limit = limits[i] as number;
        if (limit > 0 && count > limit) {
          const detail = `${owner}: ${count} ${DIMENSIONS[i]} in ${cfg.window_seconds}s`;
          return { reasons: [{ code: "geo.places", points: cfg.points, detail }] };
        }
      }
    }
    return NOTHING;
  },
};
