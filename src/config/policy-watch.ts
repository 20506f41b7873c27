import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { LoadedPolicy } from "./policy.js";

export type ReloadReason = "watch" | "signal" | "manual";

export interface PolicyWatcher {
  /** Loads the file now; true when a new policy version went live. Never rejects. */
  reload(reason: ReloadReason): Promise<boolean>;
  /** Stops watching; a reload still running finishes without handing its policy over. */
  close(): void;
}

/** `P`: the policy the loader returns, handed over as it is. */
export interface PolicyWatcherDeps<P extends LoadedPolicy<unknown>> {
  readonly load: (file: string) => Promise<P>;
  /** A valid policy with a new version was loaded; the caller swaps it in. May reject. */
  readonly onPolicy: (policy: P, reason: ReloadReason) => Promise<void> | void;
  /** The file did not load (or onPolicy refused it); the last good policy stays. */
  readonly onError: (err: unknown, reason: ReloadReason) => void;
}

export interface PolicyWatcherOptions {
  readonly file: string;
  /** Version of the policy already live (from the first load); unset: the first load is new. */
  readonly currentVersion?: string;
  /** Quiet time after the last file event before reloading (editors and the kubelet write in steps). */
  readonly debounceMs?: number;
}

/**
 * Watches the policy file and reloads it when it changes. The directory is watched, not only
 * the file: editors and Kubernetes replace files rather than write them in place (a ConfigMap
 * volume swaps a `..data` symlink), which a watch on the old inode would miss. The file itself
 * is watched too, re-armed after every reload, for what the directory does not show: a file
 * bind-mounted alone (Docker `-v policy.yaml:...`) or a symlink into another directory. Events
 * are debounced; reloads never overlap (one more runs after a reload that saw new events); a
 * reload whose content hash equals the live version does nothing. A file that failed is
 * reported once: the file event and a SIGHUP for the same bad content are one failed reload,
 * not two (a SIGHUP still retries content that validated but whose keys or lists failed to
 * load, as those may come back). Nothing here throws into the event loop: every failure goes
 * to `onError`.
 */
export function createPolicyWatcher<P extends LoadedPolicy<unknown>>(
  deps: PolicyWatcherDeps<P>,
  options: PolicyWatcherOptions,
): PolicyWatcher {
  const file = resolve(options.file);
  const debounceMs = options.debounceMs ?? 200;
  const state: WatchState = { version: options.currentVersion, failed: undefined, closed: false };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let again = false;

  const report = (err: unknown, reason: ReloadReason) => {
    try {
      deps.onError(err, reason);
    } catch {
      // a failing observer must not stop the watcher
    }
  };
  const loadOnce = (reason: ReloadReason): Promise<boolean> =>
    loadAndApply(file, deps, state, reason)
      .catch((err: unknown) => {
        report(err, reason);
        return false;
      })
      .finally(() => watching.rearm());

  function reload(reason: ReloadReason): Promise<boolean> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = await loadOnce(reason);
      while (again && !state.closed) {
        again = false;
        changed = (await loadOnce(reason)) || changed;
      }
      return changed;
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  const watching = watchPolicyFile(file, {
    changed() {
      if (state.closed) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload("watch"), debounceMs);
      timer.unref();
    },
    failed: (err) => report(err, "watch"),
  });

  return {
    reload,
    close() {
      state.closed = true;
      clearTimeout(timer);
      watching.close();
    },
  };
}

/** What a watcher remembers between reloads. */
interface WatchState {
  /** The live policy's version. */
  version: string | undefined;
  /** The content that failed last, and where: a bad file stays bad, keys may come back. */
  failed: { readonly hash: string; readonly stage: "load" | "apply" } | undefined;
  closed: boolean;
}

/**
 * Loads the file and hands a new version over (true when one went live). Rejects with what
 * failed, remembering the content and the stage: the same bad file is not reported twice, but
 * a SIGHUP retries content whose keys or lists failed to load.
 */
async function loadAndApply<P extends LoadedPolicy<unknown>>(
  file: string,
  deps: PolicyWatcherDeps<P>,
  state: WatchState,
  reason: ReloadReason,
): Promise<boolean> {
  const hash = await contentHash(file);
  const retry = reason === "signal" && state.failed?.stage === "apply";
  if (hash === state.failed?.hash && !retry) return false;
  let policy: P;
  try {
    policy = await deps.load(file);
  } catch (err) {
    state.failed = { hash, stage: "load" };
    throw err;
  }
  if (state.closed || policy.version === state.version) {
    state.failed = undefined;
    return false;
  }
  try {
    await deps.onPolicy(policy, reason);
  } catch (err) {
    state.failed = { hash, stage: "apply" };
    throw err;
  }
  state.version = policy.version;
  state.failed = undefined;
  return true;
}

/** The file's content hash, or why it could not be read (a content of its own). */
async function contentHash(file: string): Promise<string> {
  try {
    return createHash("sha256")
      .update(await readFile(file))
      .digest("hex");
  } catch (err) {
    return `unreadable:${(err as NodeJS.ErrnoException).code ?? "?"}`;
  }
}

/**
 * Watches the policy file's directory, and the file's current inode (through any symlinks),
 * re-armed by `rearm` after each reload. `changed` hears of every event that may concern it.
 */
function watchPolicyFile(
  file: string,
  on: { changed(): void; failed(err: unknown): void },
): { rearm(): void; close(): void } {
  let closed = false;
  const name = basename(file);
  let dirWatcher: FSWatcher | undefined;
  try {
    dirWatcher = watch(dirname(file), { persistent: false }, (_event, entry) => {
      // plain edits touch the file (or an editor's temp copy of it); ConfigMaps swap `..data`
      const e = entry === null ? null : String(entry);
      if (e === null || e.includes(name) || e.startsWith("..")) on.changed();
    });
    dirWatcher.on("error", on.failed);
  } catch (err) {
    on.failed(err);
  }
  let fileWatcher: FSWatcher | undefined;
  const rearm = (): void => {
    fileWatcher?.close();
    fileWatcher = undefined;
    if (closed) return;
    try {
      fileWatcher = watch(file, { persistent: false }, on.changed);
      // the inode went away (a swap or a delete): the directory watch and the next reload re-arm
      fileWatcher.on("error", () => fileWatcher?.close());
    } catch {
      // the file is missing right now: the directory watch sees it come back
    }
  };
  rearm();
  return {
    rearm,
    close() {
      closed = true;
      dirWatcher?.close();
      fileWatcher?.close();
    },
  };
}
