import { NOTHING, type Signal } from "./signal.js";

/** Route sensitivity: touching a sensitive route adds its configured points by itself. */
export const routeSensitivity: Signal = {
  name: "request.sensitivity",
  enabled: (ctx) => ctx.policy.doc.signals.sensitivity.enabled,
  evaluate(ctx) {
    const points = ctx.policy.doc.signals.sensitivity.points[ctx.route.sensitivity];
    if (points === 0) return NOTHING;
    return {
      reasons: [{ code: "request.sensitivity", points, detail: ctx.route.sensitivity }],
    };
  },
};
