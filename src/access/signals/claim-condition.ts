import { z } from "zod";
import { claimPath } from "../../config/policy-fields.js";
import { claimAt } from "../license.js";

/**
 * A condition on one claim of a verified token, as a policy writes it for its own identity
 * provider: `{claim, equals, prefix, suffix, present}`. Every test given must hold; an entry
 * with none of them asks only that the claim is present. A list claim (`roles`, `scp`) holds
 * when one of its strings does.
 */
export const claimCondition = z
  .strictObject({
    claim: claimPath,
    /** The claim is one of these strings (exact). */
    equals: z.array(z.string()).min(1).optional(),
    prefix: z.string().min(1).optional(),
    suffix: z.string().min(1).optional(),
    /** The claim is present (true) or absent (false). */
    present: z.boolean().optional(),
  })
  .refine((c) => !(c.present === false && (c.equals ?? c.prefix ?? c.suffix) !== undefined), {
    message: "present: false cannot be combined with equals, prefix or suffix",
  });

export type ClaimCondition = z.output<typeof claimCondition>;

/** True when the verified claims meet `cond`. */
export function claimConditionHolds(
  claims: Readonly<Record<string, unknown>>,
  cond: ClaimCondition,
): boolean {
  const value = claimAt(claims, cond.claim);
  const present = value !== undefined && value !== null && value !== "";
  if (cond.present === false) return !present;
  if (!present) return false;
  if (cond.equals === undefined && cond.prefix === undefined && cond.suffix === undefined) {
    return true;
  }
  const strings = Array.isArray(value)
    ? value.filter((v): v is string => typeof v === "string")
    : typeof value === "string"
      ? [value]
      : typeof value === "number" || typeof value === "boolean"
        ? [String(value)]
        : [];
  return strings.some(
    (v) =>
      (cond.equals === undefined || cond.equals.includes(v)) &&
      (cond.prefix === undefined || v.startsWith(cond.prefix)) &&
      (cond.suffix === undefined || v.endsWith(cond.suffix)),
  );
}
