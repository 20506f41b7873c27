import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { Reason } from "../reasons.js";
import { NOTHING, type Signal, section } from "./signal.js";

const reputationSection = section(
  "ip_reputation",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * Block lists (FireHOL netset, Spamhaus DROP, one IP a line): a match adds `points`, or
       * with `action: deny` refuses the request whatever the score (a hard block).
       */
      block: z
        .array(
          z.strictObject({
            file: z.string().min(1),
            points: points.default(50),
            action: z.enum(["score", "deny"]).default("score"),
          }),
        )
        .default([]),
      /**
       * Allow lists (office CIDRs): a match subtracts `points`. It never lifts a block list's
       * `action: deny` unless `overrides_block: true`.
       */
      allow: z
        .array(
          z.strictObject({
            file: z.string().min(1),
            points: points.default(20),
            overrides_block: z.boolean().default(false),
          }),
        )
        .default([]),
    })
    .prefault({}),
);

const hostingSection = section(
  "hosting_asn",
  z
    .strictObject({
      enabled: z.boolean().default(false),
      /** ASN list (one number a line, `AS` prefix allowed); needs ASN data (bundled in embedded mode, else RISKGATE_GEO_ASN_FILES). */
      file: z.string().min(1).optional(),
      points: points.default(15),
    })
    .refine((h) => !h.enabled || h.file !== undefined, { message: "set file when enabled" })
    .prefault({}),
);

const REPUTATION = {
  "ip.blocklisted": "The client IP is on a block list.",
  "ip.allowlisted": "The client IP is on an allow list (lowers the score).",
} as const;
const HOSTING = {
  "ip.hosting_asn": "The client IP belongs to a hosting or datacenter network.",
} as const;

/**
 * IP reputation from list files the policy names: each matching block list adds its points,
 * each matching allow list subtracts its points (office networks lower risk). A block list
 * with `action: deny` is a hard block, which only an allow list with `overrides_block` lifts.
 */
export const ipReputation: Signal<typeof REPUTATION, typeof reputationSection> = {
  name: "ip.reputation",
  reasons: REPUTATION,
  policy: reputationSection,
  enabled: (ctx) => ctx.policy.doc.signals.ip_reputation.enabled && ctx.req.clientIp !== "",
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.ip_reputation;
    const reasons: Reason[] = [];
    let block: Reason | undefined;
    for (const entry of cfg.block) {
      const cidr = ctx.env.ipList(entry.file)?.match(ctx.req.clientIp);
      if (cidr === undefined) continue;
      if (entry.action === "deny") {
        block ??= { code: "ip.blocklisted", points: 0, detail: `${cidr} (deny)` };
      } else {
        reasons.push({ code: "ip.blocklisted", points: entry.points, detail: cidr });
      }
    }
    let lifted = false;
    for (const entry of cfg.allow) {
      const cidr = ctx.env.ipList(entry.file)?.match(ctx.req.clientIp);
      if (cidr !== undefined) {
        reasons.push({ code: "ip.allowlisted", points: -entry.points, detail: cidr });
        if (entry.overrides_block) lifted = true;
      }
    }
    if (block !== undefined && !lifted) return { reasons, block };
    return reasons.length === 0 ? NOTHING : { reasons };
  },
};

/** Hosting/datacenter networks: the client IP's ASN (from the ASN database) is on the list. */
export const hostingAsn: Signal<typeof HOSTING, typeof hostingSection> = {
  name: "ip.hosting_asn",
  reasons: HOSTING,
  policy: hostingSection,
  // the kind of network (a VPN exit, a cloud host): a VPN-only person has it on every request
  keepsTrust: ["ip.hosting_asn"],
  data: [
    {
      source: "asn",
      // a list configured on purpose that cannot match: the policy is refused, or an operator
      // reads "loaded" and believes the protection is on
      missing: (doc) =>
        doc.signals.hosting_asn.enabled && doc.signals.hosting_asn.file !== undefined
          ? [
              "signals.hosting_asn needs ASN data (RISKGATE_GEO=embedded ships it; with RISKGATE_GEO=files set RISKGATE_GEO_ASN_FILES)",
            ]
          : [],
    },
  ],
  enabled: (ctx) =>
    ctx.policy.doc.signals.hosting_asn.enabled &&
    ctx.policy.doc.signals.hosting_asn.file !== undefined,
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.hosting_asn;
    const asn = ctx.location()?.asn;
    if (asn === undefined || cfg.file === undefined) return NOTHING;
    if (!ctx.env.asnList(cfg.file)?.has(asn)) return NOTHING;
    return { reasons: [{ code: "ip.hosting_asn", points: cfg.points, detail: `AS${asn}` }] };
  },
};
