import { readFile } from "node:fs/promises";
import { findRange } from "./find-range.js";
import type { GeoLocation } from "./geo-record.js";
import { type IpAddress, parseIp } from "./ip-address.js";

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
 * as text). The rows are kept in typed arrays and searched by bisection (`findRange`); an
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

  return {
    size: v4start.length + v6asn.length,
    lookup(addr) {
      const row =
        addr.family === 4 ? findRange(v4start, v4end, addr.value) : findRange(v6s, v6e, addr.words);
      if (row < 0) return undefined;
      return orgs.get((addr.family === 4 ? v4asn[row] : v6asn[row]) as number);
    },
  };
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
