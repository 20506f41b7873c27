import type { ApiKeyFiles } from "./access/api-keys/key-files.js";
import { createIdentifier } from "./access/identity.js";
import { identityFilesOf } from "./access/identity-deps.js";
import { type KeySource, keySourceOfPolicy } from "./access/key-source.js";
import type { Policy } from "./access/policy.js";
import { buildPolicySnapshot, type PolicySnapshot } from "./access/policy-snapshot.js";
import { signalDataGaps } from "./access/signals/signal-data.js";
import { RiskgateError } from "./errors.js";
import type { GeoReader } from "./geo/geo-reader.js";
import type { ListRegistry } from "./geo/list-registry.js";
import type { Logger } from "./telemetry/logger.js";
import type { Telemetry } from "./telemetry/telemetry.js";

/** What the app builds a policy's snapshot from besides the policy (the app's own deps fit). */
export interface SnapshotDeps {
  readonly logger: Logger;
  /** Dev mode's key source, used when the policy has no identity.jwks. */
  readonly devKeys?: KeySource;
  /** Geolocation for the geo signals (their data gaps are checked against it). */
  readonly geo?: GeoReader;
  /** Counts token verifications and JWKS fetches. */
  readonly telemetry?: Telemetry;
}

/** What a snapshot is built with besides the policy. */
export interface SnapshotParts {
  readonly lists: ListRegistry;
  /** The API key files policies name, kept live across reloads. */
  readonly apiKeyFiles: ApiKeyFiles;
  readonly hasClearanceKeys: boolean;
  /** The snapshot being replaced (its identifier is reused when identity is unchanged). */
  readonly previous: PolicySnapshot | undefined;
}

/**
 * The policy's whole snapshot; rejects (holding nothing) when any part fails: a signal the
 * policy configures without its data, interactive challenges without keys, keys that do not
 * load.
 */
export function buildSnapshot(
  deps: SnapshotDeps,
  policy: Policy,
  parts: SnapshotParts,
): Promise<PolicySnapshot> {
  // a signal the policy configures but cannot see its data for would score nothing, silently
  const gaps = signalDataGaps(policy.doc, deps.geo);
  if (gaps.missing.length > 0) {
    return Promise.reject(
      new RiskgateError(
        "RISKGATE_SIGNAL_DATA_MISSING",
        `${policy.source}: ${gaps.missing.join("; ")}`,
      ),
    );
  }
  if (!parts.hasClearanceKeys && usesInteractive(policy)) {
    return Promise.reject(
      new RiskgateError(
        "RISKGATE_CLEARANCE_KEYS_INVALID",
        `${policy.source}: interactive challenges need RISKGATE_CLEARANCE_KEYS_FILE (or --dev)`,
      ),
    );
  }
  if (gaps.idle.length > 0) {
    deps.logger.warn({ signals: gaps.idle }, "signals on without geolocation: they score nothing");
  }
  return buildPolicySnapshot(policy, {
    lists: parts.lists,
    ...(parts.previous === undefined ? {} : { previous: parts.previous }),
    async identifier(p) {
      const identifier = createIdentifier(
        {
          keys: keySourceFor(deps, p),
          ...(await identityFilesOf(p, parts.apiKeyFiles)),
          ...(deps.telemetry ? { onVerification: deps.telemetry.tokenVerification } : {}),
        },
        p.doc.identity,
      );
      await identifier.ready();
      return identifier;
    },
  });
}

function keySourceFor(deps: SnapshotDeps, policy: Policy): KeySource | undefined {
  const named = keySourceOfPolicy(
    policy.doc.identity.jwks,
    deps.telemetry ? { fetch: countingFetch(deps.telemetry) } : {},
  );
  if (named !== undefined) return named;
  if (deps.devKeys !== undefined) return deps.devKeys;
  if (policy.doc.identity.sources.jwt_authn.enabled) return undefined;
  throw new RiskgateError(
    "RISKGATE_JWKS_UNAVAILABLE",
    `${policy.source}: identity.jwks is not set; set jwks.uri or jwks.file, or run in dev mode (--dev) to trust the local dev key`,
  );
}

/** True when the policy (or one of its routes) asks for interactive challenges. */
function usesInteractive(policy: Policy): boolean {
  const doc = policy.doc;
  return (
    doc.decisions.challenge.style === "interactive" ||
    doc.routes.some((r) => r.challenge_style === "interactive")
  );
}

/** fetch that counts JWKS fetches and failures in the metrics. */
function countingFetch(telemetry: Telemetry): typeof fetch {
  return async (input, init) => {
    try {
      const res = await fetch(input, init);
      telemetry.jwks(res.ok ? "refresh" : "failure");
      return res;
    } catch (err) {
      telemetry.jwks("failure");
      throw err;
    }
  };
}
