import { type ListFormat, listFile, withoutComment } from "./list-file-watcher.js";

/** A set of autonomous system numbers, e.g. hosting and datacenter networks. */
export interface AsnList {
  has(asn: number): boolean;
  readonly size: number;
  readonly source: string;
}

const MAX_ASN = 4_294_967_295; // 32-bit ASNs (RFC 6793)

function createAsnList(asns: Iterable<number>, source: string): AsnList {
  const set = new Set(asns);
  return { has: (asn) => set.has(asn), size: set.size, source };
}

/**
 * The ASN list format: one number a line, `AS` prefix optional (`AS16509`, `as16509`,
 * `16509`), `#` and `;` comments, and text after the number (a name, or CSV columns as in
 * `16509,Amazon`) ignored.
 */
const ASN_LIST_FORMAT: ListFormat<number, AsnList> = {
  readLine(raw) {
    const body = withoutComment(raw);
    if (body === "") return undefined;
    const head = body.split(/[\s,]/, 1)[0] as string;
    const m = /^(?:AS)?(0|[1-9]\d{0,9})$/i.exec(head);
    const asn = m === null ? Number.NaN : Number(m[1]);
    return asn <= MAX_ASN ? { entry: asn } : { error: `not an AS number: ${JSON.stringify(head)}` };
  },
  build: createAsnList,
};

const ASN_LIST_FILE = listFile(ASN_LIST_FORMAT);

/** Parses an ASN list (see ASN_LIST_FORMAT); bad lines are skipped and reported with their number. */
export const parseAsnList = ASN_LIST_FILE.parse;

/** Keeps an ASN list loaded from a file, reloaded when it changes; a bad file keeps the last good list. */
export const createAsnListWatcher = ASN_LIST_FILE.watch;
