import type { Reason } from "../reasons.js";
import { NOTHING, type Signal } from "./signal.js";

/**
 * IP reputation from list files the policy names: each matching block list adds its points,
 * each matching allow list subtracts its points (office networks lower risk).
 */
export const ipReputation: Signal = {
  name: "ip.reputation",
  enabled: (ctx) => ctx.policy.doc.signals.ip_reputation.enabled && ctx.req.clientIp !== "",
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.ip_reputation;
    const reasons: Reason[] = [];
    for (const entry of cfg.block) {
      const cidr = ctx.env.ipList(entry.file)?.match(ctx.req.clientIp);
      if (cidr !== undefined) {
        reasons.push({ code: "ip.blocklisted", points: entry.points, detail: cidr });
      }
    }
    for (const entry of cfg.allow) {
      const cidr = ctx.env.ipList(entry.file)?.match(ctx.req.clientIp);
      if (cidr !== undefined) {
        reasons.push({ code: "ip.allowlisted", points: -entry.points, detail: cidr });
      }
    }
    return reasons.length === 0 ? NOTHING : { reasons };
  },
};

/** Hosting/datacenter networks: the client IP's ASN (from the ASN database) is on the list. */
export const hostingAsn: Signal = {
  name: "ip.hosting_asn",
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
