import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type { Reason } from "../reasons.js";
import { NOTHING, type Signal, section } from "./signal.js";

const requestShapeSection = section(
  "request_shape",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      max_body_bytes: z
        .number()
        .int()
        .positive()
        .default(10 * 1024 * 1024),
      oversized_points: points.default(15),
      unusual_methods: z
        .array(z.string().min(1).toUpperCase())
        .default([
          "TRACE",
          "CONNECT",
          "TRACK",
          "DEBUG",
          "PROPFIND",
          "PROPPATCH",
          "MKCOL",
          "COPY",
          "MOVE",
          "LOCK",
          "UNLOCK",
        ]),
      unusual_method_points: points.default(15),
      /** Case-insensitive substrings of automation user agents. */
      automation_user_agents: z
        .array(z.string().min(1).toLowerCase())
        .default([
          "python-requests",
          "go-http-client",
          "headlesschrome",
          "phantomjs",
          "scrapy",
          "curl/",
          "wget/",
          "libwww-perl",
          "okhttp",
        ]),
      automation_points: points.default(10),
    })
    .prefault({}),
);

const REASONS = {
  "request.oversized": "The declared request body is larger than allowed.",
  "request.unusual_method": "The HTTP method is unusual for an API (TRACE, CONNECT, WebDAV, ...).",
  "request.automation": "The user agent looks like automation.",
} as const;

/** Request shape: an oversized declared body, an unusual method, an automation user agent. */
export const requestShape: Signal<typeof REASONS, typeof requestShapeSection> = {
  name: "request.shape",
  reasons: REASONS,
  // the request's size, method and client software: nothing about who is calling or from where
  // (a script on a person's session is a rule's challenge, so no allow of it teaches; on a
  // client not yet known as a machine, a library user agent must not keep it from ever learning)
  keepsTrust: ["request.oversized", "request.unusual_method", "request.automation"],
  policy: requestShapeSection,
  enabled: (ctx) => ctx.policy.doc.signals.request_shape.enabled,
  evaluate(ctx) {
    const cfg = ctx.policy.doc.signals.request_shape;
    const reasons: Reason[] = [];
    const declared = Math.max(
      ctx.req.size,
      Number(ctx.req.headers.get("content-length") ?? -1) || -1,
    );
    if (declared > cfg.max_body_bytes) {
      reasons.push({
        code: "request.oversized",
        points: cfg.oversized_points,
        detail: `${declared} bytes`,
      });
    }
    if (cfg.unusual_methods.includes(ctx.req.method)) {
      reasons.push({
        code: "request.unusual_method",
        points: cfg.unusual_method_points,
        detail: ctx.req.method,
      });
    }
    const ua = ctx.req.headers.get("user-agent")?.toLowerCase();
    if (ua !== undefined) {
      const hit = cfg.automation_user_agents.find((p) => ua.includes(p));
      if (hit !== undefined) {
        reasons.push({ code: "request.automation", points: cfg.automation_points, detail: hit });
      }
    }
    return reasons.length === 0 ? NOTHING : { reasons };
  },
};
