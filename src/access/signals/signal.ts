import type { z } from "zod";
import type { PolicyBase, SectionIssue, TierPolicy } from "../../config/policy-schema.js";
import type { AsnList } from "../../geo/asn-list.js";
import type { GeoLocation, GeoReader } from "../../geo/geo-reader.js";
import type { IpList } from "../../geo/ip-list.js";
import type { OpResult, StoreOp } from "../../state/store.js";
import type { CredentialSource } from "../credentials/credential.js";
import type { Caller } from "../license.js";
import type { Policy, PolicyDocument } from "../policy.js";
import type { Reason } from "../reasons.js";
import type { AccessRequest } from "../request.js";
import type { ResolvedRoute } from "../routes.js";
import type { Verdict } from "../verdict.js";

/** Process-level sources signals read besides the store: geo database and list files. */
export interface SignalEnv {
  readonly geo?: GeoReader;
  /** The current list loaded from a file the policy names (reloaded when the file changes). */
  ipList(file: string): IpList | undefined;
  asnList(file: string): AsnList | undefined;
}

export const EMPTY_ENV: SignalEnv = {
  ipList: () => undefined,
  asnList: () => undefined,
};

/** Everything a signal may read about one request; built once per Check. */
export interface SignalContext {
  readonly policy: Policy;
  readonly req: AccessRequest;
  readonly caller: Caller;
  readonly route: ResolvedRoute;
  readonly tierName: string;
  readonly tier: TierPolicy;
  /** Decision clock, ms since epoch. */
  readonly now: number;
  readonly env: SignalEnv;
  /** The client IP's location, looked up at most once per request. */
  location(): GeoLocation | undefined;
  /** The device id from the configured header or cookie ("" when none). */
  readonly deviceId: string;
  /** The verified token's claims (empty for an anonymous caller). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Where the credential came from (undefined for an anonymous caller). */
  readonly credentialSource: CredentialSource | undefined;
  /** Browser session, machine token, or unknown (see client-class.ts). */
  readonly clientClass: ClientClass;
}

/**
 * What kind of client holds the credential: a person's browser session, a machine token
 * (client credentials, an SDK, a batch job), or unknown (no evidence either way: every signal
 * applies, as before client classes existed).
 */
export type ClientClass = "browser" | "machine" | "unknown";

/** What a signal found: scored reasons, and optionally a hard throttle or block. */
export interface SignalFinding {
  readonly reasons: readonly Reason[];
  readonly throttle?: { readonly retryAfterSeconds: number; readonly reason: Reason };
  /** A refusal no score can outweigh (for example a denied country). */
  readonly block?: Reason;
  /** What each external source said, for telemetry (see external-score.ts). */
  readonly observations?: readonly ExternalObservation[];
  /**
   * Reason codes this finding answers: they are dropped from the score (a passed step-up clears
   * the findings its challenge was for, see step-up.ts).
   */
  readonly clears?: readonly string[];
}

/**
 * One external source's outcome on one request: `scored` (mapped to a reason), `unmapped` (read,
 * no band or label matched), `absent`, `untrusted` (a header not from the trusted proxy hops:
 * ignored), `malformed` (not a number in range, not labels: ignored).
 */
export interface ExternalObservation {
  readonly source: string;
  readonly outcome: "scored" | "unmapped" | "absent" | "untrusted" | "malformed";
}

export const NOTHING: SignalFinding = Object.freeze({ reasons: [] });

/** What the verdict allows the signals to write once it is known. */
export interface Outcome {
  /**
   * The request reaches the upstream: allowed, a header-style challenge, or anything shadow
   * mode let through. Served requests count toward shared rate windows (org, IP, device, quota).
   */
  readonly served: boolean;
  /**
   * The enforced verdict is allow (not relaxed by shadow mode, not a header-style challenge,
   * not a downgrade), was decided on the store's state, and either carries no open finding or
   * answered a challenge with a passed step-up: only such a request may teach the subject's
   * profile (places, countries, devices, networks, usage baselines).
   */
  readonly trusted: boolean;
  /** The verdict as served (shadow mode may have relaxed it to allow). */
  readonly verdict: Verdict;
  /** The verdict before shadow mode: what the policy decided. */
  readonly enforced: Verdict;
  /** The codes of the enforced verdict's open findings ({@link openFinding}), in order. */
  readonly open: readonly string[];
}

/**
 * A reason that still stands against the caller: it adds points and its code is not one a
 * signal declared as keeping trust (`keepsTrust`). Unknown codes count as open: the safe side.
 */
export function openFinding(reason: Reason, keepsTrust: ReadonlySet<string>): boolean {
  return reason.points > 0 && !keepsTrust.has(reason.code);
}

/** The enforced verdict is a plain allow: not an allow downgraded to a lesser tier for its risk. */
export function plainAllow(enforced: Verdict): boolean {
  return enforced.kind === "allow" && !enforced.reasons.some((r) => r.code === "risk.downgraded");
}

/** The verdict served is a challenge or a deny for risk (not license, identity or failure). */
export function riskRefusal(verdict: Verdict): boolean {
  return verdict.kind === "challenge" || (verdict.kind === "deny" && verdict.cause === "risk");
}

/** The reason codes a signal can put on a verdict, each with its meaning (the reference's table). */
export type ReasonTable = Readonly<Record<string, string>>;

/**
 * A signal's section of the policy's `signals` block: its key and its strict schema, every
 * field with a safe default, and what the section asks of the rest of the document.
 */
export interface SignalSection<K extends string = string, S extends z.ZodType = z.ZodType> {
  readonly key: K;
  readonly schema: S;
  /** The `<name>` of each `external.<name>` reason code these settings can produce. */
  externalNames?(section: z.output<S>): Iterable<string>;
  /** Problems between this section and the rest of the document (paths from the root). */
  check?(section: z.output<S>, doc: PolicyBase): readonly SectionIssue[];
  /** Inbound headers these settings read that an upstream must not see. */
  upstreamHeaders?(section: z.output<S>): readonly string[];
}

/** A policy section named `key` with `schema` (and what it asks of the rest of the document). */
export function section<K extends string, S extends z.ZodType>(
  key: K,
  schema: S,
  hooks: Omit<SignalSection<K, S>, "key" | "schema"> = {},
): SignalSection<K, S> {
  return { key, schema, ...hooks };
}

/**
 * Data from outside the store that a signal reads: city geolocation or the ASN database. A
 * signal that lacks its data scores nothing, silently; the data-gap check (signal-data.ts)
 * refuses a policy that configures one on purpose and warns about one that is idle.
 */
export interface DataNeed {
  readonly source: "city" | "asn";
  /** Settings made on purpose that cannot work without the data: why the policy is refused. */
  missing?(doc: PolicyDocument): readonly string[];
  /** The policy path of a signal that is on (by default) and idle without the data. */
  idle?(doc: PolicyDocument): string | undefined;
}

/**
 * One risk signal, describing itself: the reason codes it fires, its policy section (absent
 * when it reads another signal's), the outside data it needs and the signals it must run after
 * (the registry, signals/index.ts, checks that order). `ops` names the store operations it
 * reads before the verdict (all signals' ops go to the store in one batch, one round trip);
 * `evaluate` turns their results (aligned with its ops) into reasons. `record` names the writes
 * the verdict allows; they go out after the answer, in a second batch nothing waits on.
 * Signals without state have neither.
 */
export interface Signal<
  R extends ReasonTable = ReasonTable,
  P extends SignalSection | undefined = SignalSection | undefined,
> {
  readonly name: string;
  readonly reasons: R;
  readonly policy?: P;
  readonly data?: readonly DataNeed[];
  /** Names of signals whose ops must come before this one's in the batch (when both run). */
  readonly after?: readonly string[];
  /**
   * The codes of `reasons` that say nothing against who is calling or from where: a rate, the
   * route's sensitivity, the credential's strength, the kind of network. An allow that carries
   * them may still teach the profile. Every other code, and any code not from a signal, is an
   * open finding when it adds points: an allow carrying one teaches nothing ({@link openFinding}).
   */
  readonly keepsTrust?: readonly string[];
  /**
   * The codes of `reasons` a passed step-up does not answer: it proves who is calling, not why
   * (an insider holds their own MFA). They stay on the score after `challenge.stepped_up`.
   */
  readonly beyondStepUp?: readonly string[];
  enabled(ctx: SignalContext): boolean;
  ops?(ctx: SignalContext): readonly StoreOp[];
  evaluate(ctx: SignalContext, results: readonly OpResult<StoreOp>[]): SignalFinding;
  /** `results`: what its ops read before the verdict (empty when the store failed). */
  record?(
    ctx: SignalContext,
    outcome: Outcome,
    results?: readonly OpResult<StoreOp>[],
  ): readonly StoreOp[];
  /**
   * Writes for every decided request, whether or not this signal ran for it (a refusal before
   * identity or license still counts as a failed attempt).
   */
  recordEvery?(policy: Policy, req: AccessRequest, enforced: Verdict): readonly StoreOp[];
}

/** Store key tags of plain values, for code that has no SignalContext (after a verdict). */
export const tagOf = {
  subject: (subject: string) => `s:${subject}`,
  org: (org: string) => `o:${org}`,
  ip: (clientIp: string) => `ip:${clientIp}`,
  device: (deviceId: string) => `d:${deviceId}`,
  /** A token (a hash of its jti, or of its subject and issue time). */
  token: (tokenId: string) => `t:${tokenId}`,
  /**
   * A network prefix or an ASN: per-address state (the memory store's address budget takes
   * every `ip:` tag), like a client IP.
   */
  network: (prefix: string) => `ip:${prefix}`,
  /** Every subject of one client class (population baselines): one shared key per class. */
  population: (clientClass: string) => `pop:${clientClass}`,
};

export const NO_OPS: readonly StoreOp[] = Object.freeze([]);

/** Store key tags: every key of one subject (org, IP, device) shares a Redis Cluster slot. */
export const tags = {
  subject: (ctx: SignalContext) => tagOf.subject(ctx.caller.subject),
  org: (ctx: SignalContext) => tagOf.org(ctx.caller.org),
  ip: (ctx: SignalContext) => tagOf.ip(ctx.req.clientIp),
  device: (ctx: SignalContext) => tagOf.device(ctx.deviceId),
};
