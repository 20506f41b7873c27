import { z } from "zod";
import { parseCidr } from "../geo/ip-address.js";

/**
 * The policy schema's shared vocabulary: field types every section (the base document's and
 * each signal's) spells the same way, so a number of seconds or of points means one thing.
 */

export const seconds = z.number().int().nonnegative();
/** Risk points a finding adds (0..100). */
export const points = z.number().int().min(0).max(100);
export const claimPath = z.string().min(1).describe("dot-separated path into the JWT payload");
/** How a challenge is rendered: RFC 9470 step-up, a header for the upstream, or a page a person passes. */
export const challengeStyle = z.enum(["step_up", "header", "interactive"]);
export const failureMode = z.enum(["open", "closed", "safe_methods_only"]);
export const mode = z.enum(["enforce", "shadow"]);
export const sensitivity = z.enum(["low", "medium", "high"]);
/** A client class (see signals/client-class.ts). */
export const clientClass = z.enum(["browser", "machine", "unknown"]);

export const countryCode = z
  .string()
  .regex(/^[A-Za-z]{2}$/, "use ISO 3166-1 alpha-2 codes")
  .toUpperCase();

export const cidr = z.string().superRefine((text, ctx) => {
  const parsed = parseCidr(text);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
});

/** The tail of an `external.<name>` reason code: lower-case letters, digits and `_`. */
export const externalName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_]{0,62}$/, "use lower-case letters, digits, _ (up to 63)");

/** Points (negative lowers the score) and the reason a value maps to. */
export const externalMapping = z.strictObject({
  points: z.number().int().min(-100).max(100).default(0),
  /** Reason code `external.<reason>` (default: the source's name), for rules to match. */
  reason: externalName.optional(),
});

/** A band of numbers [min, max] and what a value in it maps to. */
export const externalBand = externalMapping
  .extend({ min: z.number(), max: z.number() })
  .refine((b) => b.min <= b.max, { message: "min must not be above max" });

export type FailureMode = z.output<typeof failureMode>;
export type Sensitivity = z.output<typeof sensitivity>;
export type Mode = z.output<typeof mode>;
export type ChallengeStyle = z.output<typeof challengeStyle>;
