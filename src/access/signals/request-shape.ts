import type { Reason } from "../reasons.js";
import { NOTHING, type Signal } from "./signal.js";

/** Request shape: an oversized declared body, an unusual method, an automation user agent. */
export const requestShape: Signal = {
  name: "request.shape",
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
