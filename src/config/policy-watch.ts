import { type FSWatcher, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Policy } from "./policy.js";

export type ReloadReason = "watch" | "signal" | "manual";

export interface PolicyWatcher {
  /** Loads the file now; true when a new policy version went live. Never rejects. */
  reload(reason: ReloadReason): Promise<boolean>;
  close(): void;
}

export interface PolicyWatcherDeps {
  readonly load: (file: string) => Promise<Policy>;
  /** A valid policy with a new version was loaded; the caller swaps it in. May reject. */
  readonly onPolicy: (policy: Policy, reason: ReloadReason) => Promise<void> | void;
  /** The file did not load (or onPolicy refused it); the last good policy stays. */
  readonly onError: (err: unknown, reason: ReloadReason) => void;
}

/**
 * Watches the policy file and reloads it when it changes. The directory is watched, not the
 * file: editors and Kubernetes replace files rather than write them in place (a ConfigMap
 * volume swaps a `..data` symlink), which a watch on the old inode would miss. Events are
 * debounced; reloads never overlap (one more runs after a reload that saw new events); a
 * reload whose content hash equals the live version does nothing.
 */
export function createPolicyWatcher(
  deps: PolicyWatcherDeps,
  options: { file: string; currentVersion: string; debounceMs?: number },
): PolicyWatcher {
  const file = resolve(options.file);
  const debounceMs = options.debounceMs ?? 200;
  let version = options.currentVersion;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let again = false;
  let closed = false;

  async function loadOnce(reason: ReloadReason): Promise<boolean> {
    try {
      const policy = await deps.load(file);
      if (policy.version === version) return false;
      await deps.onPolicy(policy, reason);
      version = policy.version;
      return true;
    } catch (err) {
      try {
        deps.onError(err, reason);
      } catch {
        // a failing observer must not stop the watcher
      }
      return false;
    }
  }

  function reload(reason: ReloadReason): Promise<boolean> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = await loadOnce(reason);
      while (again && !closed) {
        again = false;
        changed = (await loadOnce(reason)) || changed;
      }
      return changed;
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
      // ConfigMaps change `..data`; plain edits change the file (or an editor's temp file)
      if (name !== null && name !== basename(file) && !String(name).startsWith("..")) {
        if (!String(name).includes(basename(file))) return;
      }
      clearTimeout(timer);
      timer = setTimeout(() => void reload("watch"), debounceMs);
    });
    watcher.on("error", (err) => deps.onError(err, "watch"));
  } catch (err) {
    deps.onError(err, "watch");
  }

  return {
    reload,
    close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
