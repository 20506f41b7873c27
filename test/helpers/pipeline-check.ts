import type { IdentityOutcome } from "../../src/access/identity.js";
import { createPipeline } from "../../src/access/pipeline.js";
import { parsePolicy } from "../../src/access/policy.js";
import { policySnapshotOf } from "../../src/access/policy-snapshot.js";
import type { AccessRequest } from "../../src/access/request.js";
import type { Verdict } from "../../src/access/verdict.js";
import type { GeoReader } from "../../src/geo/geo-reader.js";
import type { PolicyLists } from "../../src/geo/list-registry.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store } from "../../src/state/store.js";
import { accessRequest, TEST_NOW } from "./access-request.js";
import { fakeIdentifier } from "./fake-identifier.js";

export interface PipelineCheckOptions {
  /** The fake identity provider's tokens: `Bearer NAME` answers tokens[NAME]. */
  readonly claims: Record<string, Record<string, unknown> | IdentityOutcome>;
  readonly geo?: GeoReader;
  /** Default: a fresh memory store (the embedded default, real state). */
  readonly store?: Store;
  /** List files the policy names (default: none). */
  readonly lists?: PolicyLists;
}

/**
 * The whole pipeline on a policy text, at the unit tests' clock ({@link TEST_NOW} unless a
 * request sets `receivedAt`): `check(token, over)` sends `Bearer token` with `over` applied to
 * the default request (each with its own id) and resolves to the verdict.
 */
export function pipelineCheck(
  policyText: string,
  options: PipelineCheckOptions,
): (token: string, over?: Partial<AccessRequest>) => Promise<Verdict> {
  const runtime = policySnapshotOf(
    parsePolicy(policyText, "t.yaml"),
    fakeIdentifier(options.claims),
    options.lists,
  );
  const pipeline = createPipeline({
    store: options.store ?? createMemoryStore(),
    clock: () => TEST_NOW,
    ...(options.geo === undefined ? {} : { geo: options.geo }),
  });
  let n = 0;
  return async (token, over = {}) => {
    const headers = new Map(over.headers ?? []);
    headers.set("authorization", `Bearer ${token}`);
    const req = accessRequest({ id: `r${++n}`, ...over, headers });
    return (await pipeline.evaluate(runtime, req)).verdict;
  };
}

/** The reason codes of a verdict, in order. */
export const codes = (v: { reasons: readonly { code: string }[] }) => v.reasons.map((r) => r.code);

/** The unit tests' clock moved by `m` minutes (ms since epoch). */
export const minutes = (m: number) => TEST_NOW + m * 60_000;
