import {
  type HeldLists,
  type ListRegistry,
  NO_LISTS,
  type PolicyLists,
} from "../geo/list-registry.js";
import type { Identifier } from "./identity.js";
import type { Policy } from "./policy.js";
import { compileRoutes, type RouteTable } from "./routes.js";

/**
 * Everything one policy load brings, built in full before it serves a Check and swapped in
 * one step: the validated policy, its compiled routes, the identifier for its identity section
 * (keys loaded), and the list files it names. A Check reads the current snapshot once, so a
 * reload never splits a decision.
 */
export interface PolicySnapshot {
  readonly policy: Policy;
  readonly routes: RouteTable;
  readonly identifier: Identifier;
  readonly lists: PolicyLists;
  /**
   * Releases what this snapshot holds that no newer one shares (list file watchers). Call it
   * after the swap; Checks still running on it keep the lists they read. Idempotent.
   */
  close(): void;
}

export interface PolicySnapshotDeps {
  /**
   * Builds the identifier for the policy's identity section; rejects (or throws) when its keys
   * cannot be loaded. Not called when `previous` has the same identity section.
   */
  identifier(policy: Policy): Identifier | Promise<Identifier>;
  /** Where the policy's list files are opened; without it the snapshot holds no lists. */
  readonly lists?: ListRegistry;
  /** The snapshot being replaced: its identifier is reused when the identity section is unchanged. */
  readonly previous?: PolicySnapshot;
}

/**
 * Builds a policy's runtime snapshot: routes, then lists, then identity. A failure at any stage
 * rejects and releases what the earlier stages opened; nothing the previous snapshot holds is
 * touched, so the caller keeps serving with it.
 */
export async function buildPolicySnapshot(
  policy: Policy,
  deps: PolicySnapshotDeps,
): Promise<PolicySnapshot> {
  const routes = compileRoutes(policy.doc);
  const lists = deps.lists === undefined ? NO_LISTS : await deps.lists.acquire(policy);
  try {
    const previous = deps.previous;
    const identifier =
      previous !== undefined && sameIdentity(previous.policy, policy)
        ? previous.identifier
        : await deps.identifier(policy);
    return assemble(policy, routes, identifier, lists);
  } catch (err) {
    lists.release();
    throw err;
  }
}

/**
 * A snapshot from parts already built: for tests and tools that bring their own identifier
 * (and lists), where nothing has to load.
 */
export function policySnapshotOf(
  policy: Policy,
  identifier: Identifier,
  lists: PolicyLists = NO_LISTS,
): PolicySnapshot {
  return assemble(policy, compileRoutes(policy.doc), identifier, { ...lists, release() {} });
}

function assemble(
  policy: Policy,
  routes: RouteTable,
  identifier: Identifier,
  lists: HeldLists,
): PolicySnapshot {
  return Object.freeze({
    policy,
    routes,
    identifier,
    lists: { ipList: lists.ipList, asnList: lists.asnList },
    close: lists.release,
  });
}

function sameIdentity(a: Policy, b: Policy): boolean {
  return JSON.stringify(a.doc.identity) === JSON.stringify(b.doc.identity);
}
