import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { RiskgateError } from "../errors.js";

/** A line of a list file that was skipped, and why. Lines count from 1. */
export interface LineError {
  readonly line: number;
  readonly message: string;
}

/** What parsing a list file gives: the list, the skipped lines, and how many lines it kept. */
export interface ParsedList<T> {
  readonly list: T;
  readonly errors: readonly LineError[];
  readonly accepted: number;
}

/** What one line holds: an entry, a problem, or nothing (blank line, comment). */
export type LineResult<E> = { readonly entry: E } | { readonly error: string } | undefined;

/** A line-based list file format: how a line reads, and how the entries become a list. */
export interface ListFormat<E, T> {
  readLine(line: string): LineResult<E>;
  build(entries: E[], source: string): T;
}

/** Lines between two yields to the event loop while a watcher parses a file. */
const LINES_PER_SLICE = 4096;

/**
 * Parses `text` line by line (LF or CRLF, a leading BOM dropped), numbering lines from 1. With
 * `slice`, it yields to the event loop every `slice` lines, so that a 100k-line feed being
 * reloaded does not hold up requests for the whole parse.
 */
function parseWith<E, T>(
  format: ListFormat<E, T>,
  text: string,
  source: string,
  slice?: number,
): ParsedList<T> | Promise<ParsedList<T>> {
  const entries: E[] = [];
  const errors: LineError[] = [];
  const lines = text.split("\n");
  if (lines[0]?.charCodeAt(0) === 0xfeff) lines[0] = lines[0].slice(1);
  const visit = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const result = format.readLine(lines[i] as string);
      if (result === undefined) continue;
      if ("error" in result) errors.push({ line: i + 1, message: result.error });
      else entries.push(result.entry);
    }
  };
  const done = (): ParsedList<T> => ({
    list: format.build(entries, source),
    errors,
    accepted: entries.length,
  });
  if (slice === undefined) {
    visit(0, lines.length);
    return done();
  }
  return (async () => {
    for (let from = 0; from < lines.length; from += slice) {
      if (from > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      visit(from, Math.min(lines.length, from + slice));
    }
    return done();
  })();
}

/** Parses a whole list file at once (see `parseWith`). */
export function parseListText<E, T>(
  format: ListFormat<E, T>,
  text: string,
  source: string,
): ParsedList<T> {
  return parseWith(format, text, source) as ParsedList<T>;
}

/** The text of a list line before its `#` or `;` comment, trimmed ("" for a blank or comment line). */
export function withoutComment(line: string): string {
  const cut = line.search(/[#;]/);
  return (cut < 0 ? line : line.slice(0, cut)).trim();
}

export interface ListFileWatcherDeps<T> {
  /** A new list is live. `errors` names lines that were skipped (the rest loaded). */
  onLoad(list: T, errors: readonly LineError[]): void;
  /** The file could not be read or was rejected; the previous list stays live. */
  onError(err: unknown): void;
}

export interface ListFileWatcherOptions {
  readonly file: string;
  /** Quiet time after the last change event before the file is read. Default 100 ms. */
  readonly debounceMs?: number;
}

export interface ListFileWatcher<T> {
  /** The live list: the last one that loaded, or the empty list before that. */
  current(): T;
  /** Settles when the first load attempt (started on creation) has finished. */
  ready(): Promise<void>;
  /** Reads the file again now; settles once a load that started after this call finished. */
  reload(): Promise<void>;
  close(): void;
}

/** More bad lines than good: an HTML error page or a truncated download, not a feed. */
function isJunk(errors: number, accepted: number): boolean {
  return errors > accepted;
}

/**
 * Reads and parses a list file: the parsed list, the error to report when the file cannot be
 * used (the previous list then stays live), or undefined when the watcher closed meanwhile.
 */
async function readListFile<E, T>(
  format: ListFormat<E, T>,
  file: string,
  closed: () => boolean,
): Promise<ParsedList<T> | RiskgateError | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    return new RiskgateError(
      "RISKGATE_LIST_UNREADABLE",
      `list file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); keeping the previous list`,
      { file },
      { cause: err },
    );
  }
  if (closed()) return undefined;
  if (text.trim() === "") {
    // An in-place write truncates first, and a failed download leaves an empty file:
    // neither should wipe a block list. A comment line publishes an empty list on purpose.
    return new RiskgateError(
      "RISKGATE_LIST_UNREADABLE",
      `list file ${file}: empty (a write in progress?); keeping the previous list (a comment line publishes an empty list)`,
      { file },
    );
  }
  const parsed = await parseWith(format, text, file, LINES_PER_SLICE);
  if (closed()) return undefined;
  if (isJunk(parsed.errors.length, parsed.accepted)) {
    return new RiskgateError(
      "RISKGATE_LIST_UNREADABLE",
      `list file ${file}: ${parsed.errors.length} bad lines and ${parsed.accepted} good; keeping the previous list`,
      { file, errors: parsed.errors.slice(0, 10) },
    );
  }
  return parsed;
}

/**
 * Watches the directory of `file` for changes to it; undefined (reported) when the directory
 * cannot be watched.
 */
function watchDirectoryOf(
  file: string,
  onChange: () => void,
  reportError: (err: unknown) => void,
): FSWatcher | undefined {
  const name = basename(file);
  try {
    const watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      // Some platforms omit the name; then any change in the directory counts.
      if (changed === null || changed === name) onChange();
    });
    watcher.on("error", (err) => reportError(err));
    return watcher;
  } catch (err) {
    reportError(
      new RiskgateError(
        "RISKGATE_LIST_UNREADABLE",
        `list file ${file}: cannot watch its directory (${(err as Error).message}); changes will not reload`,
        { file },
        { cause: err },
      ),
    );
    return undefined;
  }
}

/**
 * Keeps a list loaded from a file and reloads it when the file changes. The directory is
 * watched, not the file: a rename-over (the safe way to publish a list) replaces the inode,
 * which a watch on the file itself would stop seeing. Events are debounced because one write
 * fires several. The file is parsed in slices, with requests served in between. A read error,
 * an empty file, or a file with more bad lines than good (a truncated download, an HTML error
 * page) keeps the last good list and reports through `onError`.
 */
export function watchListFile<E, T>(
  deps: ListFileWatcherDeps<T>,
  options: ListFileWatcherOptions,
  format: ListFormat<E, T>,
): ListFileWatcher<T> {
  const { file } = options;
  const debounceMs = options.debounceMs ?? 100;
  if (!Number.isFinite(debounceMs) || debounceMs < 0) {
    throw new TypeError(`debounceMs must be a non-negative number, got ${debounceMs}`);
  }
  let live = format.build([], file);
  let closed = false;
  let dirty = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  // Callers' hooks must not break the watcher: a throwing onLoad is reported, a throwing
  // onError is dropped.
  const reportError = (err: unknown) => {
    try {
      deps.onError(err);
    } catch {}
  };

  const loadOnce = async () => {
    const read = await readListFile(format, file, () => closed);
    if (read === undefined) return;
    if (read instanceof RiskgateError) {
      reportError(read);
      return;
    }
    live = read.list;
    try {
      deps.onLoad(read.list, read.errors);
    } catch (err) {
      reportError(err);
    }
  };

  const schedule = (): Promise<void> => {
    if (closed) return Promise.resolve();
    dirty = true;
    running ??= (async () => {
      try {
        while (dirty && !closed) {
          dirty = false;
          await loadOnce();
        }
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const onChange = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void schedule(), debounceMs);
    timer.unref();
  };

  const watcher = watchDirectoryOf(file, onChange, reportError);
  const first = schedule();

  return {
    current: () => live,
    ready: () => first,
    reload: schedule,
    close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
  };
}

/** A list file format as its callers use it: a text parsed at once, or a file kept live. */
export interface ListFile<T> {
  /** Parses `text`; bad lines are skipped and reported with their number. */
  parse(text: string, source: string): { list: T; errors: LineError[] };
  /**
   * Keeps a list loaded from `options.file`, reloaded when the file changes (directory watch +
   * debounce); a read error or a junk file keeps the last good list.
   */
  watch(deps: ListFileWatcherDeps<T>, options: ListFileWatcherOptions): ListFileWatcher<T>;
}

/** The parser and the watcher of one list file format. */
export function listFile<E, T>(format: ListFormat<E, T>): ListFile<T> {
  return {
    parse(text, source) {
      const { list, errors } = parseListText(format, text, source);
      return { list, errors: [...errors] };
    },
    watch: (deps, options) => watchListFile(deps, options, format),
  };
}
