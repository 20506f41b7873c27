import { RiskgateError } from "../../errors.js";
import { type ListFileWatcher, watchListFile } from "../../geo/list-file-watcher.js";
import type { Logger } from "../../telemetry/logger.js";
import { API_KEY_FORMAT, type ApiKeyTable } from "./key-file.js";

/** The live keys of one file: the last good load. */
export interface ApiKeys {
  current(): ApiKeyTable;
}

/**
 * The API key files policies name, each kept live by one watcher (reloaded on change and
 * swapped whole, as the IP lists are: a rename-over publishes a new file atomically, and a bad
 * or empty file keeps the last good keys). Shared by every policy snapshot naming the same
 * file, so a reload that keeps the file keeps its watcher.
 */
export interface ApiKeyFiles {
  /** The file's keys once loaded; rejects with RISKGATE_LIST_UNREADABLE when it never loaded. */
  open(path: string): Promise<ApiKeys>;
  close(): void;
}

export function createApiKeyFiles(deps: { logger: Logger }): ApiKeyFiles {
  const files = new Map<string, { watcher: ListFileWatcher<ApiKeyTable>; loaded: boolean }>();
  let failed: unknown;
  return {
    async open(path) {
      let file = files.get(path);
      if (file === undefined) {
        const entry = { loaded: false } as {
          watcher: ListFileWatcher<ApiKeyTable>;
          loaded: boolean;
        };
        entry.watcher = watchListFile(
          {
            onLoad: (table, errors) => {
              entry.loaded = true;
              // line numbers only: a line may hold a key's digest, never worth a log line
              if (errors.length > 0) {
                deps.logger.warn(
                  {
                    file: path,
                    lines: errors.slice(0, 5).map((e) => e.line),
                    count: errors.length,
                  },
                  "api key lines skipped",
                );
              }
              deps.logger.info({ file: path, keys: table.size }, "api keys loaded");
            },
            onError: (err) => {
              failed = err;
              deps.logger.error(
                { file: path, err },
                "api keys not loaded; keeping the last good ones",
              );
            },
          },
          { file: path },
          API_KEY_FORMAT,
        );
        file = entry;
        files.set(path, file);
      }
      await file.watcher.ready();
      if (!file.loaded) {
        file.watcher.close();
        files.delete(path);
        throw new RiskgateError(
          "RISKGATE_LIST_UNREADABLE",
          failed instanceof Error ? failed.message : `api key file ${path}: not loaded`,
          {},
          { cause: failed },
        );
      }
      const watcher = file.watcher;
      return { current: () => watcher.current() };
    },
    close() {
      for (const f of files.values()) f.watcher.close();
      files.clear();
    },
  };
}
