/**
 * The shipped production policy as the outside benchmark runs it: every signal, rule, tier and
 * route of policies/production.yaml, with only what a benchmark cannot keep changed.
 *
 * - identity: the issuer, audience and JWKS file of the bench key (the production IdP is not
 *   reachable here), as issue 23's outside replay did; tokens are verified by the real JWT path
 *   (a `jwks.file` key source), not by dev mode;
 * - limits: one bench caller at saturation sends tens of thousands of Checks a minute, so the
 *   tiers' request rates, quotas and the person ceiling are raised past what a run sends. The
 *   counters are still read and bumped on every Check; only the thresholds move, so the Check
 *   costs what it costs in production and is allowed;
 * - list files are made absolute, since the copy lives in a temporary folder;
 * - `extraBlockList`: one more `ip_reputation.block` file (the "full" variant's 10,000 CIDRs).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

// built (dist/bench/) or run from source (bench/, as the unit tests do)
const here = dirname(fileURLToPath(import.meta.url));
const root = basename(dirname(here)) === "dist" ? resolve(here, "../..") : resolve(here, "..");
export const PRODUCTION_POLICY = join(root, "policies", "production.yaml");

/** Well past what any bench run sends in a window, a month or a session's ceiling. */
const UNREACHED = 1_000_000_000;

export interface BenchPolicyOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksFile: string;
  /** Where the copy is written. */
  readonly out: string;
  readonly extraBlockList?: string;
}

type Doc = {
  identity: Record<string, unknown>;
  tiers: Record<string, { limits?: Record<string, number>; quota?: { requests: number } }>;
  signals: {
    velocity?: { person_ceiling?: Record<string, unknown> };
    ip_reputation?: { block?: { file: string; points?: number; action?: string }[] };
    hosting_asn?: { file?: string };
  };
};

/** Writes the bench copy of policies/production.yaml to `opts.out` and returns its path. */
export function writeBenchProductionPolicy(opts: BenchPolicyOptions): string {
  const doc = parse(readFileSync(PRODUCTION_POLICY, "utf8")) as Doc;
  const base = dirname(PRODUCTION_POLICY);
  const absolute = (file: string) => (isAbsolute(file) ? file : resolve(base, file));
  doc.identity.issuers = [opts.issuer];
  doc.identity.audiences = [opts.audience];
  doc.identity.jwks = { file: opts.jwksFile };
  for (const tier of Object.values(doc.tiers)) {
    for (const key of Object.keys(tier.limits ?? {})) (tier.limits ?? {})[key] = UNREACHED;
    if (tier.quota !== undefined) tier.quota.requests = UNREACHED;
  }
  const velocity = doc.signals.velocity ?? {};
  velocity.person_ceiling = { ...velocity.person_ceiling, requests: UNREACHED };
  const reputation = doc.signals.ip_reputation;
  for (const entry of reputation?.block ?? []) entry.file = absolute(entry.file);
  if (opts.extraBlockList !== undefined) {
    reputation?.block?.push({ file: opts.extraBlockList, points: 60, action: "deny" });
  }
  const asn = doc.signals.hosting_asn;
  if (asn?.file !== undefined) asn.file = absolute(asn.file);
  writeFileSync(opts.out, stringify(doc));
  return opts.out;
}

/**
 * `count` CIDRs (a mix of /16, /20, /24 and single /32 addresses), each in its own /16 so none
 * overlaps another and the list holds exactly `count` entries, from a seeded generator, none
 * inside 81.0.0.0/8 where the bench callers live; written as a netset file.
 */
export function writeBlockList(dir: string, count: number): string {
  let seed = 0x2545f491;
  const next = () => {
    // xorshift32: the same list every run, no dependency
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const prefixes = [16, 20, 24, 24, 24, 32, 32, 32];
  const used = new Set<number>();
  const lines = [`# bench: ${count} CIDRs, seeded, none in 81.0.0.0/8`];
  while (used.size < count) {
    const first = 1 + (next() % 222);
    if (first === 10 || first === 81 || first === 127) continue;
    const slash16 = (first << 8) | (next() & 255);
    if (used.has(slash16)) continue;
    used.add(slash16);
    const bits = prefixes[next() % prefixes.length] as number;
    const addr = ((slash16 << 16) | (next() & 0xffff)) >>> 0;
    const masked = bits === 32 ? addr : (addr & (~0 << (32 - bits))) >>> 0;
    lines.push(
      `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${bits}`,
    );
  }
  const file = join(dir, "block-10k.netset");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}
