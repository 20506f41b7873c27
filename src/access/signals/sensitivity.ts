import { z } from "zod";
import { NOTHING, type Signal, section } from "./signal.js";

const sensitivitySection = section(
  "sensitivity",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      points: z
        .strictObject({
          low: z.number().int().min(0).max(100).default(0),
          medium: z.number().int().min(0).max(100).default(5),
          high: z.number().int().min(0).max(100).default(15),
        })
        .prefault({}),
    })
    .prefault({}),
);

const REASONS = {
  "request.sensitivity": "The route is marked sensitive; touching it adds risk by itself.",
} as const;

/** Route sensitivity: touching a sensitive route adds its configured points by itself. */
export const routeSensitivity: Signal<typeof REASONS, typeof sensitivitySection> = {
  name: "request.sensitivity",
  reasons: REASONS,
  // the route's weight, not anything about the caller
  keepsTrust: ["request.sensitivity"],
  policy: sensitivitySection,
  enabled: (ctx) => ctx.policy.doc.signals.sensitivity.enabled,
  evaluate(ctx) {
    const points = ctx.policy.doc.signals.sensitivity.points[ctx.route.sensitivity];
    if (points === 0) return NOTHING;
    return {
      reasons: [{ code: "request.sensitivity", points, detail: ctx.route.sensitivity }],
    };
  },
};
