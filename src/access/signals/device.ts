import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import { cookieValue } from "../cookies.js";
import type { PolicyDocument } from "../policy.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import { newMember } from "./new-member.js";
import { NOTHING, type Signal, section } from "./signal.js";

/**
 * `signals.device`: where the device id comes from (the pipeline reads it once per request, see
 * `deviceIdOf`), and the device signals' points.
 */
const deviceSection = section(
  "device",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      header: z.string().min(1).toLowerCase().default("x-device-id"),
      cookie: z.string().min(1).optional(),
      new_device_points: points.default(10),
      remember_seconds: z
        .number()
        .int()
        .positive()
        .default(90 * 86400),
      max_devices: z.number().int().positive().max(1000).default(20),
      /** Header an MDM-aware proxy sets; absent or not in `posture_ok` adds `posture_points`. Off when unset. */
      posture_header: z.string().min(1).toLowerCase().optional(),
      posture_ok: z.array(z.string()).default(["compliant", "true"]),
      posture_points: points.default(15),
      /** Points when the connection has no mTLS principal (0 = off). */
      no_mtls_points: points.default(0),
      /** Points when a browser session (see client_class) sends no device id (0 = off). */
      missing_points: points.default(0),
    })
    .prefault({}),
);

/** The device id from the configured header, else the configured cookie ("" when none). */
export function deviceIdOf(req: AccessRequest, cfg: PolicyDocument["signals"]["device"]): string {
  if (!cfg.enabled) return "";
  const header = req.headers.get(cfg.header);
  if (header !== undefined && header !== "") return header.slice(0, 256);
  if (cfg.cookie === undefined) return "";
  return (cookieValue(req.headers.get("cookie"), cfg.cookie) ?? "").slice(0, 256);
}

const NEW = {
  "device.new": "The subject uses a device id it was not seen with before.",
} as const;
const POSTURE = {
  "device.posture": "The device posture header is missing or not compliant.",
  "device.no_mtls": "The connection carries no mTLS client identity.",
} as const;
const MISSING = {
  "device.missing": "A browser session (by its client class) sent no device id.",
} as const;

/** New device: the device id joins the subject's bounded set; a new one (not the first) scores. */
export const newDevice: Signal<typeof NEW, typeof deviceSection> = {
  ...newMember(NEW, {
    code: "device.new",
    set: "devices",
    section: "device",
    max: "max_devices",
    points: "new_device_points",
    member: (ctx) => ctx.deviceId,
  }),
  policy: deviceSection,
};

/** Device posture (a compliance header an MDM-aware proxy sets) and mTLS client identity. */
export const devicePosture: Signal<typeof POSTURE, undefined> = {
  name: "device.posture",
  reasons: POSTURE,
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
export const deviceMissing: Signal<typeof MISSING, undefined> = {
  name: "device.missing",
  reasons: MISSING,
  enabled: (ctx) =>
    ctx.policy.doc.signals.device.enabled &&
    ctx.policy.doc.signals.device.missing_points > 0 &&
    ctx.clientClass === "browser" &&
    ctx.deviceId === "",
  evaluate: (ctx) => ({
    reasons: [{ code: "device.missing", points: ctx.policy.doc.signals.device.missing_points }],
  }),
};
