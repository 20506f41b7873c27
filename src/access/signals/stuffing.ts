import { z } from "zod";
import { points } from "../../config/policy-fields.js";
import type {
  CountReading,
  MemberReading,
  OpResult,
  StoreOp,
  SwapReading,
} from "../../state/store.js";
import type { Reason } from "../reasons.js";
import { networkOf } from "./network.js";
import {
  NO_OPS,
  NOTHING,
  riskRefusal,
  type Signal,
  type SignalContext,
  section,
  tags,
} from "./signal.js";

/**
 * Credential stuffing judged against the population: a never-trusted subject from a country
 * its org never used, and one IP carrying many orgs' people.
 */
const stuffingSection = section(
  "stuffing",
  z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Points when a subject with no trusted sighting comes from a country no trusted member of its org used (0 = off). */
      org_new_country_points: points.default(50),
      /** Distinct orgs of person tokens from one IP in the window before it scores (0 = off). */
      distinct_orgs_per_ip: z.number().int().nonnegative().default(3),
      distinct_orgs_window_seconds: z.number().int().positive().default(86400),
      distinct_orgs_points: points.default(50),
      /** The same count for a subject with no trusted sighting at all (0 = off). */
      first_sighting_orgs_per_ip: z.number().int().nonnegative().default(2),
      first_sighting_points: points.default(50),
      /** How long a subject's trusted networks and an org's trusted countries are remembered. */
      remember_seconds: z.number().int().positive().default(7776000),
      /** How long a subject must have been trusted before its requests teach its org. */
      org_learning_seconds: z.number().int().nonnegative().default(3600),
      max_subject_networks: z.number().int().positive().default(32),
      max_org_countries: z.number().int().positive().default(64),
      max_org_networks: z.number().int().positive().default(1024),
    })
    .prefault({}),
);

const REASONS = {
  "stuffing.org_new_country":
    "A subject with no trusted sighting yet comes from a country no trusted member of its org has used.",
  "stuffing.first_sighting_shared_ip":
    "A subject with no trusted sighting yet comes from a client IP that carried another org's people in the window.",
  "stuffing.many_orgs_ip":
    "The client IP carried person tokens of many orgs in the window, and the subject is not trusted on its network.",
} as const;

/**
 * Store key names: the subject's trusted networks, when it was first trusted and first refused
 * on a first sighting; its org's trusted countries and networks; the orgs per IP.
 */
const SUBJECT_NETS = "stn";
const ORG_COUNTRIES = "countries";
const ORG_NETS = "nets";
const IP_ORGS = "orgs";
const SUBJECT_SINCE = "trusted-since";
const SUBJECT_REFUSED = "first-refused";

/**
 * Credential stuffing with valid logins, judged against the population rather than against the
 * subject (a stuffed account is usually dormant: riskgate has never seen it, so it has no
 * profile to differ from). Three findings, for person-held tokens of a known org only (a machine
 * token holds no password to stuff, and a shared integration host carries many orgs by design):
 *
 * - `stuffing.org_new_country`: a subject with no trusted sighting yet, from a country no trusted
 *   member of its org has used (the org has some). Entra ID's "unfamiliar sign-in properties"
 *   and Okta's behaviour detection compare a sign-in with the user's history; a dormant
 *   account has none, so the org's history stands in for it.
 * - `stuffing.many_orgs_ip`: this IP presented person tokens of `distinct_orgs_per_ip` orgs in
 *   `distinct_orgs_window_seconds`, and the subject is not trusted on its network. An office
 *   NAT carries one org's people; a stuffing source carries whichever orgs its combo list hit
 *   (Okta ThreatInsight flags an IP by its activity across many orgs, Auth0's suspicious-IP
 *   throttling by logins against many accounts). The window is a day, not minutes: stuffers
 *   pace logins to stay under per-minute counters.
 * - `stuffing.first_sighting_shared_ip`: the same with a lower count (`first_sighting_orgs_per_ip`,
 *   another org's people on the address in the day) for a subject with no trusted sighting at
 *   all: a dormant account's first login from someone else's address. Meant for a step-up (a
 *   new colleague on a shared network can answer it), where `many_orgs_ip` is meant to refuse.
 *
 * The first-sighting findings do not fire on a network the org's trusted members use, nor once
 * the subject stepped up after its first refusal (a strong login with a later `auth_time`). The
 * subject's networks and the org's countries and networks are read before the verdict and
 * learnt only from trusted (enforced allow) requests; the orgs per IP are counted on every
 * request that gets this far, since a refused request is still what the IP presented.
 */
export const stuffing: Signal<typeof REASONS, typeof stuffingSection> = {
  name: "stuffing",
  reasons: REASONS,
  policy: stuffingSection,
  enabled: (ctx) =>
    ctx.policy.doc.signals.stuffing.enabled &&
    !ctx.caller.anonymous &&
    ctx.caller.org !== "" &&
    ctx.clientClass !== "machine" &&
    ctx.req.clientIp !== "",
  ops(ctx) {
    const cfg = ctx.policy.doc.signals.stuffing;
    const { net, country } = facts(ctx);
    return [
      { op: "has", key: { tag: tags.subject(ctx), name: SUBJECT_NETS }, member: net },
      { op: "has", key: { tag: tags.org(ctx), name: ORG_COUNTRIES }, member: country },
      { op: "has", key: { tag: tags.org(ctx), name: ORG_NETS }, member: net },
      {
        op: "distinct",
        key: { tag: tags.ip(ctx), name: IP_ORGS },
        member: ctx.caller.org,
        windowMs: cfg.distinct_orgs_window_seconds * 1000,
      },
      { op: "get", key: { tag: tags.subject(ctx), name: SUBJECT_SINCE } },
      { op: "get", key: { tag: tags.subject(ctx), name: SUBJECT_REFUSED } },
    ];
  },
  evaluate(ctx, results) {
    const reasons = findings(ctx, results);
    return reasons.length === 0 ? NOTHING : { reasons };
  },
  record(ctx, outcome, results) {
    const cfg = ctx.policy.doc.signals.stuffing;
    const ttlMs = cfg.remember_seconds * 1000;
    if (!outcome.trusted) {
      // the first refusal of a first sighting: a step-up after it (a strong login with a
      // later auth_time) clears the first-sighting findings
      const firstSighting =
        riskRefusal(outcome.verdict) &&
        readTime(results, REFUSED_AT) === undefined &&
        findings(ctx, results ?? []).some((r) => r.code !== "stuffing.many_orgs_ip");
      if (!firstSighting) return NO_OPS;
      return [
        {
          op: "swap",
          key: { tag: tags.subject(ctx), name: SUBJECT_REFUSED },
          value: String(ctx.now),
          ttlMs,
        },
      ];
    }
    const { net, country } = facts(ctx);
    const ops: StoreOp[] = [
      {
        op: "member",
        key: { tag: tags.subject(ctx), name: SUBJECT_NETS },
        member: net,
        ttlMs,
        max: cfg.max_subject_networks,
      },
    ];
    // the time of the subject's first trusted request; only a subject trusted for
    // `org_learning_seconds` teaches its org, so a stuffed account allowed for a few requests
    // before its source was known cannot make the source one of its org's networks
    const since = readTime(results, SINCE_AT);
    if (since === undefined) {
      ops.push({
        op: "swap",
        key: { tag: tags.subject(ctx), name: SUBJECT_SINCE },
        value: String(ctx.now),
        ttlMs,
      });
      return ops;
    }
    if (ctx.now - since < cfg.org_learning_seconds * 1000) return ops;
    ops.push({
      op: "member",
      key: { tag: tags.org(ctx), name: ORG_NETS },
      member: net,
      ttlMs,
      max: cfg.max_org_networks,
    });
    if (country !== "") {
      ops.push({
        op: "member",
        key: { tag: tags.org(ctx), name: ORG_COUNTRIES },
        member: country,
        ttlMs,
        max: cfg.max_org_countries,
      });
    }
    return ops;
  },
};

/** Where the `get` readings sit in the signal's results. */
const SINCE_AT = 4;
const REFUSED_AT = 5;

/** A time (ms) a `get` reading holds; undefined when none. */
function readTime(
  results: readonly OpResult<StoreOp>[] | undefined,
  at: number,
): number | undefined {
  const previous = (results?.[at] as SwapReading | undefined)?.previous ?? null;
  if (previous === null) return undefined;
  const time = Number(previous);
  return Number.isFinite(time) ? time : undefined;
}

/** What the signal finds in its readings (evaluate, and record after a refusal). */
function findings(ctx: SignalContext, results: readonly OpResult<StoreOp>[]): Reason[] {
  const cfg = ctx.policy.doc.signals.stuffing;
  const subject = results[0] as MemberReading | undefined;
  const org = results[1] as MemberReading | undefined;
  const orgNet = results[2] as MemberReading | undefined;
  const orgs = results[3] as CountReading | undefined;
  const reasons: Reason[] = [];
  if (subject === undefined) return reasons;
  const { country } = facts(ctx);
  // a person refused on a first sighting who then stepped up (a strong login after the
  // refusal) has answered the first-sighting findings, as Auth0's adaptive MFA clears an
  // untrusted IP; a stuffing source still refuses whoever is not trusted on it
  const neverTrusted = subject.size === 0 && !steppedUp(ctx, readTime(results, REFUSED_AT));
  if (
    cfg.org_new_country_points > 0 &&
    neverTrusted &&
    country !== "" &&
    org?.isNew &&
    org.size > 0
  ) {
    reasons.push({
      code: "stuffing.org_new_country",
      points: cfg.org_new_country_points,
      detail: country,
    });
  }
  const perWindow = `${orgs?.count ?? 0} orgs in ${cfg.distinct_orgs_window_seconds}s`;
  if (
    cfg.distinct_orgs_per_ip > 0 &&
    subject.isNew &&
    orgs !== undefined &&
    orgs.count >= cfg.distinct_orgs_per_ip
  ) {
    reasons.push({
      code: "stuffing.many_orgs_ip",
      points: cfg.distinct_orgs_points,
      detail: perWindow,
    });
  } else if (
    cfg.first_sighting_orgs_per_ip > 0 &&
    neverTrusted &&
    orgNet?.isNew &&
    orgs !== undefined &&
    orgs.count >= cfg.first_sighting_orgs_per_ip
  ) {
    // (not on a network the org's trusted members use: a new colleague at the office whose
    // address another org's visitor used today is no stuffing source)
    reasons.push({
      code: "stuffing.first_sighting_shared_ip",
      points: cfg.first_sighting_points,
      detail: perWindow,
    });
  }
  return reasons;
}

/** The caller authenticated strongly (`signals.weak_auth`'s list) after `refusedAt`. */
function steppedUp(ctx: SignalContext, refusedAt: number | undefined): boolean {
  const authTime = ctx.caller.authTime;
  if (refusedAt === undefined || authTime === undefined || authTime * 1000 <= refusedAt) {
    return false;
  }
  const cfg = ctx.policy.doc.signals.weak_auth;
  return (
    ctx.caller.amr.some((m) => cfg.strong_amr.includes(m)) ||
    (ctx.caller.acr !== "" && cfg.strong_acr.includes(ctx.caller.acr))
  );
}

/** The request's network (/24 or /48, else the address) and country ("" when unknown). */
function facts(ctx: SignalContext): { net: string; country: string } {
  return {
    net: networkOf(ctx.req.clientIp) ?? ctx.req.clientIp,
    country: ctx.location()?.country ?? "",
  };
}
