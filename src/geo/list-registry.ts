import { dirname, resolve } from "node:path";
import { RiskgateError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import { type AsnList, createAsnListWatcher } from "./asn-list.js";
import { createIpListWatcher, type IpList } from "./ip-list.js";
import type { ListFileWatcher } from "./list-file-watcher.js";

/** The lists one policy names, looked up by the file name as the policy spells it. */
export interface PolicyLists {
  ipList(file: string): IpList | undefined;
  asnList(file: string): AsnList | undefined;
}

/**
 * What the registry reads of a policy: the file it came from (relative list paths resolve
 * against its folder) and the list files its signals name. Structural, so that geo needs no
 * access code to read a policy.
 */
export interface Policy {
  readonly source: string;
  readonly doc: {
    readonly signals: {
      readonly ip_reputation: {
        readonly block: readonly { readonly file: string }[];
        readonly allow: readonly { readonly file: string }[];
      };
      readonly hosting_asn: { readonly enabled: boolean; readonly file?: string | undefined };
    };
  };
}

/** A policy's lists, held open (watched) until `release`. */
export interface HeldLists extends PolicyLists {
  /** Lets go of the lists; a file no other holder names stops being watched. Idempotent. */
  release(): void;
}

/**
 * The list files policies name (IP block/allow lists, the hosting ASN list), each kept live by
 * one file watcher shared by every policy snapshot that names it. A reload acquires the new
 * policy's lists before the old snapshot releases its own, so a list both name is never closed
 * and reopened, and a reload that fails leaves the old snapshot's lists untouched. Relative paths
 * are resolved against the policy file's folder.
 */
export interface ListRegistry {
  /**
   * Opens (or shares) every list the policy names. Rejects with RISKGATE_LIST_UNREADABLE, holding
   * nothing, when one has never loaded (unreadable, empty, or more bad lines than good).
   */
  acquire(policy: Policy): Promise<HeldLists>;
  /** Closes every watcher (at shutdown). */
  close(): void;
}

type Entry = (
  | { kind: "ip"; watcher: ListFileWatcher<IpList> }
  | { kind: "asn"; watcher: ListFileWatcher<AsnList> }
) & {
  /** Holders (policy snapshots) naming this file. */
  refs: number;
  /** A list has loaded from the file at least once. */
  loaded: boolean;
  /** Why the last load failed (cleared by a good load). */
  failed?: unknown;
};

/** The lists of a policy that names none (nothing to release). */
export const NO_LISTS: HeldLists = Object.freeze({
  ipList: () => undefined,
  asnList: () => undefined,
  release: () => {},
});

interface RegistryDeps {
  logger: Logger;
  onReload?: (file: string, ok: boolean) => void;
}

/** Starts watching one list file; its entry records whether it has loaded. */
function openEntry(deps: RegistryDeps, path: string, kind: "ip" | "asn"): Entry {
  const hooks = {
    onLoad: (list: { size: number }, errors: readonly { line: number; message: string }[]) => {
      if (errors.length > 0) {
        deps.logger.warn(
          { file: path, skipped: errors.slice(0, 5), count: errors.length },
          "list lines skipped",
        );
      }
      deps.logger.info({ file: path, entries: list.size }, "list loaded");
      deps.onReload?.(path, true);
      entry.loaded = true;
      entry.failed = undefined;
    },
    onError: (err: unknown) => {
      entry.failed = err;
      deps.logger.error({ file: path, err }, "list not loaded; keeping the last good one");
      deps.onReload?.(path, false);
    },
  };
  const entry: Entry =
    kind === "ip"
      ? { kind, watcher: createIpListWatcher(hooks, { file: path }), refs: 0, loaded: false }
      : { kind, watcher: createAsnListWatcher(hooks, { file: path }), refs: 0, loaded: false };
  return entry;
}

/** The list files a policy names, as named, with their kind. */
function listsOf(policy: Policy): Map<string, "ip" | "asn"> {
  const wanted = new Map<string, "ip" | "asn">();
  const signals = policy.doc.signals;
  for (const l of [...signals.ip_reputation.block, ...signals.ip_reputation.allow]) {
    wanted.set(l.file, "ip");
  }
  if (signals.hosting_asn.enabled && signals.hosting_asn.file !== undefined) {
    wanted.set(signals.hosting_asn.file, "asn");
  }
  return wanted;
}

/** Creates an empty registry; `acquire(policy)` before serving. */
export function createListRegistry(deps: RegistryDeps): ListRegistry {
  // keyed by kind and resolved path
  const entries = new Map<string, Entry>();

  function unref(id: string, entry: Entry): void {
    entry.refs--;
    if (entry.refs === 0 && entries.get(id) === entry) {
      entry.watcher.close();
      entries.delete(id);
    }
  }

  return {
    async acquire(policy) {
      const base = dirname(policy.source);
      const wanted = listsOf(policy); // file as named -> kind
      if (wanted.size === 0) return NO_LISTS;
      const held = new Map<string, [id: string, entry: Entry]>(); // file as named -> entry
      for (const [file, kind] of wanted) {
        const id = `${kind}:${resolve(base, file)}`;
        let entry = entries.get(id);
        if (entry === undefined) {
          entry = openEntry(deps, resolve(base, file), kind);
          entries.set(id, entry);
        }
        entry.refs++;
        held.set(file, [id, entry]);
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        for (const [id, entry] of held.values()) unref(id, entry);
      };
      await Promise.all([...held.values()].map(([, e]) => e.watcher.ready()));
      const broken = [...held.values()].find(([, e]) => !e.loaded)?.[1];
      if (broken !== undefined) {
        release();
        const err = broken.failed;
        throw new RiskgateError(
          "RISKGATE_LIST_UNREADABLE",
          err instanceof Error ? err.message : String(err),
          {},
          { cause: err },
        );
      }
      const lookup = new Map([...held].map(([file, [, entry]]) => [file, entry]));
      return {
        ipList(file) {
          const e = lookup.get(file);
          return e?.kind === "ip" ? e.watcher.current() : undefined;
        },
        asnList(file) {
          const e = lookup.get(file);
          return e?.kind === "asn" ? e.watcher.current() : undefined;
        },
        release,
      };
    },
    close() {
      for (const e of entries.values()) e.watcher.close();
      entries.clear();
    },
  };
}
