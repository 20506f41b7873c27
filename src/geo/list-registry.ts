import { dirname, resolve } from "node:path";
import type { Policy } from "../config/policy.js";
import { RiskgateError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import { type AsnList, createAsnListWatcher } from "./asn-list.js";
import { createIpListWatcher, type IpList } from "./ip-list.js";
import type { ListFileWatcher } from "./list-file-watcher.js";

/**
 * The list files a policy names (IP block/allow lists, the hosting ASN list), each kept live by
 * a file watcher. `sync` follows policy reloads: it opens lists a new policy names and closes
 * the ones it no longer does. Relative paths are resolved against the policy file's folder.
 */
export interface ListRegistry {
  /** Loads every list the policy names; rejects with RISKGATE_LIST_UNREADABLE when one cannot be read. */
  sync(policy: Policy): Promise<void>;
  ipList(file: string): IpList | undefined;
  asnList(file: string): AsnList | undefined;
  close(): void;
}

type Entry =
  | { kind: "ip"; watcher: ListFileWatcher<IpList>; failed?: unknown }
  | { kind: "asn"; watcher: ListFileWatcher<AsnList>; failed?: unknown };

/** Creates an empty registry; call `sync(policy)` before serving. */
export function createListRegistry(deps: {
  logger: Logger;
  onReload?: (file: string, ok: boolean) => void;
}): ListRegistry {
  const entries = new Map<string, Entry>();
  let base = ".";
  // resolved paths, memoised: signals ask for their lists on every Check
  const resolved = new Map<string, string>();
  const key = (file: string) => {
    let path = resolved.get(file);
    if (path === undefined) {
      path = resolve(base, file);
      resolved.set(file, path);
    }
    return path;
  };

  function open(path: string, kind: "ip" | "asn"): Entry {
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
        ? { kind, watcher: createIpListWatcher(hooks, { file: path }) }
        : { kind, watcher: createAsnListWatcher(hooks, { file: path }) };
    return entry;
  }

  return {
    async sync(policy) {
      base = dirname(policy.source);
      resolved.clear();
      const wanted = new Map<string, "ip" | "asn">();
      const signals = policy.doc.signals;
      for (const l of [...signals.ip_reputation.block, ...signals.ip_reputation.allow]) {
        wanted.set(key(l.file), "ip");
      }
      if (signals.hosting_asn.enabled && signals.hosting_asn.file !== undefined) {
        wanted.set(key(signals.hosting_asn.file), "asn");
      }
      const fresh: Entry[] = [];
      for (const [path, kind] of wanted) {
        if (!entries.has(path)) {
          const entry = open(path, kind);
          entries.set(path, entry);
          fresh.push(entry);
        }
      }
      await Promise.all(fresh.map((e) => e.watcher.ready()));
      for (const [path, entry] of entries) {
        if (!wanted.has(path)) {
          entry.watcher.close();
          entries.delete(path);
        }
      }
      const broken = fresh.find((e) => e.failed !== undefined);
      if (broken !== undefined) {
        const err = broken.failed;
        throw new RiskgateError(
          "RISKGATE_LIST_UNREADABLE",
          err instanceof Error ? err.message : String(err),
          {},
          { cause: err },
        );
      }
    },
    ipList(file) {
      const e = entries.get(key(file));
      return e?.kind === "ip" ? e.watcher.current() : undefined;
    },
    asnList(file) {
      const e = entries.get(key(file));
      return e?.kind === "asn" ? e.watcher.current() : undefined;
    },
    close() {
      for (const e of entries.values()) e.watcher.close();
      entries.clear();
    },
  };
}
