import type { MemberReading } from "../../state/store.js";
import type { Reason } from "../reasons.js";
import { NO_OPS, NOTHING, type Signal, tags } from "./signal.js";

/**
 * New device: a device id not in the subject's bounded set (and not the first) scores. Only a
 * trusted (enforced allow) request adds its device to the set.
 */
export const newDevice: Signal = {
  name: "device.new",
  enabled: (ctx) =>
    ctx.policy.doc.signals.device.enabled && !ctx.caller.anonymous && ctx.deviceId !== "",
  ops: (ctx) => [
    { op: "has", key: { tag: tags.subject(ctx), name: "devices" }, member: ctx.deviceId },
  ],
  record(ctx, outcome) {
    if (!outcome.trusted) return NO_OPS;
    const cfg = ctx.policy.doc.signals.device;
    return [
      {
        op: "member",
        key: { tag: tags.subject(ctx), name: "devices" },
        member: ctx.deviceId,
        ttlMs: cfg.remember_seconds * 1000,
        max: cfg.max_devices,
      },
    ];
  },
  evaluate(ctx, results) {
    const reading = results[0] as MemberReading | undefined;
    // size is the set before this request: 0 means the first one seen, which is no news
    if (reading === undefined || !reading.isNew || reading.size === 0) return NOTHING;
    return {
      reasons: [{ code: "device.new", points: ctx.policy.doc.signals.device.new_device_points }],
    };
  },
};

/** Device posture (a compliance header an MDM-aware proxy sets) and mTLS client identity. */
export const devicePosture: Signal = {
  name: "device.posture",
  enabled: (ctx) => ctx.policy.doc.signals.device.enabled,
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.device;
    const reasons: Reason[] = [];
    if (cfg.posture_header !== undefined) {
      const value = ctx.req.headers.get(cfg.posture_header)?.trim().toLowerCase();
      if (value === undefined || !cfg.posture_ok.includes(value)) {
        reasons.push({
          code: "device.posture",
          points: cfg.posture_points,
          detail: value === undefined ? "absent" : "not compliant",
        });
      }
    }
    if (cfg.no_mtls_points > 0 && ctx.req.principal === "") {
      reasons.push({ code: "device.no_mtls", points: cfg.no_mtls_points });
    }
    return reasons.length === 0 ? NOTHING : { reasons };
  },
};
