import type { Reason } from "../reasons.js";
import { newMember } from "./new-member.js";
import { NOTHING, type Signal } from "./signal.js";

/** New device: the device id joins the subject's bounded set; a new one (not the first) scores. */
export const newDevice = newMember({
  code: "device.new",
  set: "devices",
  section: "device",
  max: "max_devices",
  points: "new_device_points",
  member: (ctx) => ctx.deviceId,
});

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

/**
 * Missing device id: a browser session (see client classes) that sends no device id, where
 * the site's own script always sets one. Only browsers: a machine token has no device.
 */
export const deviceMissing: Signal = {
  name: "device.missing",
  enabled: (ctx) =>
    ctx.policy.doc.signals.device.enabled &&
    ctx.policy.doc.signals.device.missing_points > 0 &&
    ctx.clientClass === "browser" &&
    ctx.deviceId === "",
  evaluate: (ctx) => ({
    reasons: [{ code: "device.missing", points: ctx.policy.doc.signals.device.missing_points }],
  }),
};
