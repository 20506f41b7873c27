import type { TierPolicy } from "../config/policy-schema.js";
import type { Policy, PolicyDocument } from "./policy.js";
import type { Reason } from "./reasons.js";
import type { ResolvedRoute } from "./routes.js";

/** Who is calling, as read from verified claims through the policy's claim paths. */
export interface Caller {
  readonly subject: string;
  readonly org: string;
  /** Tier name as claimed ("" when absent). */
  readonly tier: string;
  /** Entitlements listed in the token (add-ons on top of the tier's). */
  readonly entitlements: readonly string[];
  readonly amr: readonly string[];
  readonly acr: string;
  /** auth_time in seconds since epoch, undefined when absent. */
  readonly authTime?: number;
  readonly anonymous: boolean;
}

/** The license check's result: the tier that applies, or the reason the license refuses. */
export type LicenseOutcome =
  | { readonly ok: true; readonly tierName: string; readonly tier: TierPolicy }
  | { readonly ok: false; readonly reason: Reason };

/** Reads a dot-separated path from a JSON object. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function stringList(value: unknown): string[] {
  if (typeof value === "string") return value.split(/[\s,]+/).filter((s) => s !== "");
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  return [];
}

function text(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
}

/** Builds the caller from verified claims (`scope`-style space-separated strings or arrays). */
export function callerFromClaims(
  claims: Readonly<Record<string, unknown>>,
  paths: PolicyDocument["identity"]["claims"],
): Caller {
  const authTime = claimAt(claims, paths.auth_time);
  return {
    subject: text(claimAt(claims, paths.subject)),
    org: text(claimAt(claims, paths.org)),
    tier: text(claimAt(claims, paths.tier)),
    entitlements: stringList(claimAt(claims, paths.entitlements)),
    amr: stringList(claimAt(claims, paths.amr)),
    acr: text(claimAt(claims, paths.acr)),
    ...(typeof authTime === "number" && Number.isFinite(authTime) ? { authTime } : {}),
    anonymous: false,
  };
}

/** The caller on an `auth: optional` route who presented no credential. */
export function anonymousCaller(tier: string, clientIp: string): Caller {
  return {
    subject: `anonymous:${clientIp}`,
    org: "",
    tier,
    entitlements: [],
    amr: [],
    acr: "",
    anonymous: true,
  };
}

/** True when the tier (or the token's own add-ons) grants `entitlement`. */
export function grants(tier: TierPolicy, caller: Caller, entitlement: string | undefined): boolean {
  if (entitlement === undefined) return true;
  return tier.entitlements.includes(entitlement) || caller.entitlements.includes(entitlement);
}

/**
 * Applies the license: the tier must exist, the route may restrict tiers, and the route's
 * entitlement must be granted by the tier or listed in the token.
 */
export function checkLicense(policy: Policy, caller: Caller, route: ResolvedRoute): LicenseOutcome {
  const tier = Object.hasOwn(policy.doc.tiers, caller.tier)
    ? policy.doc.tiers[caller.tier]
    : undefined;
  if (tier === undefined) {
    return {
      ok: false,
      reason: {
        code: "license.tier_unknown",
        points: 0,
        detail: caller.tier === "" ? "no tier claim" : `tier "${caller.tier}"`,
      },
    };
  }
  const rule = route.rule;
  if (rule?.tiers !== undefined && !rule.tiers.includes(caller.tier)) {
    return {
      ok: false,
      reason: { code: "license.tier_not_allowed", points: 0, detail: `route ${route.name}` },
    };
  }
  if (!grants(tier, caller, rule?.entitlement)) {
    return {
      ok: false,
      reason: {
        code: "license.entitlement_missing",
        points: 0,
        detail: `needs ${rule?.entitlement ?? ""}`,
      },
    };
  }
  return { ok: true, tierName: caller.tier, tier };
}
