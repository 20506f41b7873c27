import { readFile } from "node:fs/promises";
import type { GeoLocation } from "./geo-record.js";
import { type IpAddress, type Ipv6Words, parseIp } from "./ip-address.js";

/** An IP-to-ASN table read from ip-location-db's CSV files (sorted, non-overlapping ranges). */
export interface AsnRanges {
  /** The ASN (and its organisation) of the range holding the address, if any. */
  lookup(addr: IpAddress): GeoLocation | undefined;
  /** Ranges loaded (IPv4 + IPv6), for logs. */
  readonly size: number;
}

/**
 * Reads ip-location-db's ASN CSVs (`@ip-location-db/asn`: RouteViews + RIRs + DB-IP ASN Lite):
 * `asn-ipv4-num.csv` (`start,end,asn,org`, addresses as integers) and `asn-ipv6.csv` (addresses
 * as text). The rows are kept in typed arrays and searched by binary search; an
 * organisation's name is stored once per ASN.
 */
export async function openAsnRanges(files: { ipv4?: string; ipv6?: string }): Promise<AsnRanges> {
  const [v4text, v6text] = await Promise.all([
    files.ipv4 === undefined ? "" : readFile(files.ipv4, "utf8"),
    files.ipv6 === undefined ? "" : readFile(files.ipv6, "utf8"),
  ]);
  return parseAsnRanges(v4text, v6text);
}

/** Builds the table from the two CSV texts (either may be ""); malformed rows are skipped. */
export function parseAsnRanges(v4text: string, v6text: string): AsnRanges {
  // one frozen record per ASN; rows keep only the number
  const orgs = new Map<number, GeoLocation>();
  const owner = (asn: number, org: string): number => {
    if (!orgs.has(asn)) {
      // a copy: a slice of the file's text would keep the whole text (30 MB) alive
      const asOrg = org === "" ? undefined : Buffer.from(org).toString();
      orgs.set(asn, Object.freeze(asOrg === undefined ? { asn } : { asn, asOrg }));
    }
    return asn;
  };

  const v4 = { start: [] as number[], end: [] as number[], owner: [] as number[] };
  forEachRow(v4text, (a, b, asn, org) => {
    const start = Number(a);
    const end = Number(b);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return;
    v4.start.push(start);
    v4.end.push(end);
    v4.owner.push(owner(asn, org));
  });
  const v4start = Uint32Array.from(v4.start);
  const v4end = Uint32Array.from(v4.end);
  const v4asn = Uint32Array.from(v4.owner);

  const v6start: number[] = [];
  const v6end: number[] = [];
  const v6owner: number[] = [];
  forEachRow(v6text, (a, b, asn, org) => {
    const start = parseIp(a);
    const end = parseIp(b);
    if (start?.family !== 6 || end?.family !== 6) return;
    v6start.push(...start.words);
    v6end.push(...end.words);
    v6owner.push(owner(asn, org));
  });
  const v6s = Uint32Array.from(v6start);
  const v6e = Uint32Array.from(v6end);
  const v6asn = Uint32Array.from(v6owner);

  function find4(value: number): GeoLocation | undefined {
    // the last range starting at or before the address
    let lo = 0;
    let hi = v4start.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((v4start[mid] as number) <= value) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && value <= (v4end[at] as number) ? orgs.get(v4asn[at] as number) : undefined;
  }

  function find6(words: Ipv6Words): GeoLocation | undefined {
    let lo = 0;
    let hi = v6asn.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareAt(v6s, mid, words) <= 0) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && compareAt(v6e, at, words) >= 0 ? orgs.get(v6asn[at] as number) : undefined;
  }

  return {
    size: v4start.length + v6asn.length,
    lookup: (addr) => (addr.family === 4 ? find4(addr.value) : find6(addr.words)),
  };
}

/** Compares row `i` of a 4-words-per-row table with an address. */
function compareAt(table: Uint32Array, i: number, words: Ipv6Words): number {
  for (let k = 0; k < 4; k++) {
    const a = table[i * 4 + k] as number;
    const b = words[k] as number;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** Calls `row` for each `start,end,asn,org` line (org may be quoted, with "" for a quote). */
function forEachRow(
  text: string,
  row: (start: string, end: string, asn: number, org: string) => void,
): void {
  let from = 0;
  while (from < text.length) {
    let to = text.indexOf("\n", from);
    if (to === -1) to = text.length;
    const line = text.slice(from, to);
    from = to + 1;
    const c1 = line.indexOf(",");
    const c2 = line.indexOf(",", c1 + 1);
    const c3 = line.indexOf(",", c2 + 1);
    if (c1 === -1 || c2 === -1) continue;
    const asn = Number(line.slice(c2 + 1, c3 === -1 ? undefined : c3));
    if (!Number.isSafeInteger(asn) || asn <= 0) continue;
    let org = c3 === -1 ? "" : line.slice(c3 + 1).trimEnd();
    if (org.startsWith('"') && org.endsWith('"') && org.length >= 2) {
      org = org.slice(1, -1).replaceAll('""', '"');
    }
    row(line.slice(0, c1), line.slice(c1 + 1, c2), asn, org);
  }
}
