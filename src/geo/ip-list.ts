import { findRange } from "./find-range.js";
import {
  compareWords,
  formatIpv4,
  formatIpv6,
  type IpRange,
  type Ipv6Words,
  parseCidr,
  parseIp,
} from "./ip-address.js";
import { type LineResult, type ListFormat, listFile, withoutComment } from "./list-file-watcher.js";

export type { LineError } from "./list-file-watcher.js";

/** A set of IPv4 and IPv6 CIDR blocks (a block list or an allow list). */
export interface IpList {
  /** True when a block of the list contains `ip`. Invalid input is not contained. */
  has(ip: string): boolean;
  /** The block containing `ip` as canonical CIDR text (`1.2.3.0/24`, `2001:db8::/32`), if any. */
  match(ip: string): string | undefined;
  /** Blocks held after nested ones were folded into the blocks containing them. */
  readonly size: number;
  /** Where the list came from (a file path), for reasons and logs. */
  readonly source: string;
}

/**
 * The blocks as disjoint ranges in sorted typed arrays, searched by bisection: O(log n) per
 * lookup and 9 bytes per IPv4 block, 33 per IPv6 block. CIDR blocks either nest or do not
 * touch, so "merging overlaps" means dropping blocks inside another one; adjacent blocks stay
 * apart so that `match` can name the block a caller is in.
 */
class CidrList implements IpList {
  readonly size: number;

  constructor(
    readonly source: string,
    private readonly v4Start: Uint32Array,
    private readonly v4End: Uint32Array,
    private readonly v4Prefix: Uint8Array,
    /** Four words per range. */
    private readonly v6Start: Uint32Array,
    private readonly v6End: Uint32Array,
    private readonly v6Prefix: Uint8Array,
  ) {
    this.size = v4Prefix.length + v6Prefix.length;
  }

  has(ip: string): boolean {
    return this.find(ip) !== undefined;
  }

  match(ip: string): string | undefined {
    const hit = this.find(ip);
    if (hit === undefined) return undefined;
    if (hit.family === 4) {
      return `${formatIpv4(this.v4Start[hit.index] as number)}/${this.v4Prefix[hit.index]}`;
    }
    return `${formatIpv6(wordsAt(this.v6Start, hit.index))}/${this.v6Prefix[hit.index]}`;
  }

  private find(ip: string): { family: 4 | 6; index: number } | undefined {
    if (this.size === 0) return undefined;
    const addr = parseIp(ip);
    if (addr === undefined) return undefined;
    const index =
      addr.family === 4
        ? findRange(this.v4Start, this.v4End, addr.value)
        : findRange(this.v6Start, this.v6End, addr.words);
    return index < 0 ? undefined : { family: addr.family, index };
  }
}

function wordsAt(arr: Uint32Array, index: number): Ipv6Words {
  const at = index * 4;
  return [arr[at] as number, arr[at + 1] as number, arr[at + 2] as number, arr[at + 3] as number];
}

/** Sorts the IPv4 blocks and drops the ones nested inside another. */
function buildV4(ranges: readonly IpRange[]): [Uint32Array, Uint32Array, Uint8Array] {
  // One numeric key per block (start, then shorter prefix first) sorts natively and fast.
  const keys = new Float64Array(ranges.length);
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i] as IpRange & { family: 4 };
    keys[i] = r.start * 64 + r.prefix;
  }
  keys.sort();
  const starts = new Uint32Array(keys.length);
  const ends = new Uint32Array(keys.length);
  const prefixes = new Uint8Array(keys.length);
  let n = 0;
  let lastEnd = -1;
  for (const key of keys) {
    const prefix = key % 64;
    const start = (key - prefix) / 64;
    if (start <= lastEnd) continue; // inside the previous block (or a duplicate)
    const end = start + 2 ** (32 - prefix) - 1;
    starts[n] = start;
    ends[n] = end;
    prefixes[n] = prefix;
    lastEnd = end;
    n++;
  }
  return [starts.slice(0, n), ends.slice(0, n), prefixes.slice(0, n)];
}

/** Sorts the IPv6 blocks and drops the ones nested inside another. */
function buildV6(ranges: readonly IpRange[]): [Uint32Array, Uint32Array, Uint8Array] {
  const sorted = (ranges as readonly (IpRange & { family: 6 })[])
    .slice()
    .sort((a, b) => compareWords(a.start, b.start) || a.prefix - b.prefix);
  const starts = new Uint32Array(sorted.length * 4);
  const ends = new Uint32Array(sorted.length * 4);
  const prefixes = new Uint8Array(sorted.length);
  let n = 0;
  let lastEnd: Ipv6Words | undefined;
  for (const r of sorted) {
    if (lastEnd !== undefined && compareWords(r.start, lastEnd) <= 0) continue;
    starts.set(r.start, n * 4);
    ends.set(r.end, n * 4);
    prefixes[n] = r.prefix;
    lastEnd = r.end;
    n++;
  }
  return [starts.slice(0, n * 4), ends.slice(0, n * 4), prefixes.slice(0, n)];
}

/** Builds a list from parsed blocks (any order, overlaps allowed). */
export function createIpList(ranges: readonly IpRange[], source: string): IpList {
  const v4 = buildV4(ranges.filter((r) => r.family === 4));
  const v6 = buildV6(ranges.filter((r) => r.family === 6));
  return new CidrList(source, ...v4, ...v6);
}

/** Lines of Tor's `exit-addresses` document that carry no address. */
const TOR_FIELDS = new Set(["ExitNode", "Published", "LastStatus"]);

/** The address or block text one line holds, a problem, or nothing (blank, comment). */
function entryText(raw: string): LineResult<string> {
  const trimmed = raw.trim();
  // Spamhaus' JSON feeds (drop_v4.json): one object per line, the last one metadata.
  if (trimmed.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      return { error: "not valid JSON" };
    }
    const rec = value as { cidr?: unknown; type?: unknown };
    if (typeof rec.cidr === "string") return { entry: rec.cidr };
    if (rec.type === "metadata") return undefined;
    return { error: 'JSON line without a "cidr" field' };
  }
  // `#` (FireHOL) and `;` (Spamhaus DROP) start comments, at line start or after the entry.
  const text = withoutComment(trimmed);
  if (text === "") return undefined;
  const tokens = text.split(/\s+/);
  const head = tokens[0] as string;
  if (TOR_FIELDS.has(head)) return undefined;
  if (head === "ExitAddress") {
    return tokens[1] === undefined
      ? { error: "ExitAddress without an address" }
      : { entry: tokens[1] };
  }
  if (tokens.length > 1) return { error: `unexpected text after ${JSON.stringify(head)}` };
  return { entry: head };
}

/** The IP list file format: the feeds below, one block or address a line. */
const IP_LIST_FORMAT: ListFormat<IpRange, IpList> = {
  readLine(raw) {
    const found = entryText(raw);
    if (found === undefined || "error" in found) return found;
    const range = parseCidr(found.entry);
    return typeof range === "string" ? { error: range } : { entry: range };
  },
  build: createIpList,
};

const IP_LIST_FILE = listFile(IP_LIST_FORMAT);

/**
 * Parses an IP list: FireHOL netsets (`#` comments), Spamhaus DROP (`1.2.3.0/24 ; SBL123`, or
 * its JSON lines), one address per line (Tor's bulk exit list, or `ExitAddress` lines), with
 * blank lines, CRLF and a BOM tolerated. Bad lines are skipped and reported with their number.
 */
export const parseIpList = IP_LIST_FILE.parse;

/** Keeps an IP list loaded from a file, reloaded when it changes; a bad file keeps the last good list. */
export const createIpListWatcher = IP_LIST_FILE.watch;
