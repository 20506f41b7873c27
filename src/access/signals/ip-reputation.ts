import type { Reason } from "../reasons.js";
import { NOTHING, type Signal } from "./signal.js";

/**
 * IP reputation from list files the policy names: each matching block list adds its points,
 * each matching allow list subtracts its points (office networks lower risk). A block list
 * with `action: deny` is a hard block, which only an allow list with `overrides_block` lifts.
 */
export const ipReputation: Signal = {
  name: "ip.reputation",
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
