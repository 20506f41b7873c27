import ipaddr from "ipaddr.js";

/**
 * IP addresses as plain numbers, the form the geo reader and the CIDR lists compare. IPv4 is
 * one uint32; IPv6 is four uint32 words, most significant first, so ranges compare word by
 * word without BigInt allocations on the hot path. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is
 * IPv4: a dual-stack listener reports IPv4 clients that way, and lists name them as IPv4.
 */
export type IpAddress =
  | { readonly family: 4; readonly value: number }
  | { readonly family: 6; readonly words: Ipv6Words };

/** Four uint32 words of an IPv6 address, most significant first. */
export type Ipv6Words = readonly [number, number, number, number];

/** A CIDR block as the first and last address it covers, with its prefix length. */
export type IpRange =
  | { readonly family: 4; readonly start: number; readonly end: number; readonly prefix: number }
  | {
      readonly family: 6;
      readonly start: Ipv6Words;
      readonly end: Ipv6Words;
      readonly prefix: number;
    };

const CHAR_0 = 48;
const CHAR_DOT = 46;

/**
 * Strict dotted-quad IPv4 (four decimal parts, 0-255, no leading zeros), or -1. Hand-rolled
 * because ipaddr.js costs 1-2 us per parse and this runs on every request; it also refuses
 * the classful and octal forms (`127.1`, `010.0.0.1`) that ipaddr.js accepts, whose meaning
 * differs between parsers.
 */
function parseDottedQuad(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === CHAR_DOT) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    const d = c - CHAR_0;
    if (d < 0 || d > 9) return -1;
    if (digits === 1 && part === 0) return -1; // leading zero
    part = part * 10 + d;
    if (part > 255) return -1;
    digits++;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

function wordsOf(parts: readonly number[]): Ipv6Words {
  const word = (i: number) => (((parts[i] ?? 0) << 16) | (parts[i + 1] ?? 0)) >>> 0;
  return [word(0), word(2), word(4), word(6)];
}

function isMapped(words: Ipv6Words): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

const CHAR_COLON = 58;

/** Value of a hex digit's char code, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/**
 * The common IPv6 forms (hex groups, at most one `::`, an optional trailing dotted quad) as
 * 16-bit groups; undefined means "not sure", and ipaddr.js decides. It only ever accepts valid
 * text (a test checks it against ipaddr.js), and is ten times faster, which matters because
 * every request's address is parsed for each list and the geo reader.
 */
function parseIpv6Groups(text: string): number[] | undefined {
  const n = text.length;
  if (n < 2 || n > 45) return undefined;
  const head: number[] = [];
  const tail: number[] = [];
  let groups = head;
  let compressed = false;
  let i = 0;
  if (text.charCodeAt(0) === CHAR_COLON) {
    if (text.charCodeAt(1) !== CHAR_COLON) return undefined;
    compressed = true;
    groups = tail;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let value = 0;
    while (i < n && i - start < 5) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      i++;
    }
    if (i < n && text.charCodeAt(i) === CHAR_DOT) {
      // `::a.b.c.d` (IPv4-compatible, deprecated) is read as IPv4-mapped by ipaddr.js: its call.
      if (compressed && head.length === 0 && tail.length === 0) return undefined;
      const v4 = parseDottedQuad(text.slice(start));
      if (v4 < 0) return undefined;
      groups.push(Math.floor(v4 / 65536), v4 & 0xffff);
      i = n;
      break;
    }
    const digits = i - start;
    if (digits === 0 || digits > 4) return undefined;
    groups.push(value);
    if (i === n) break;
    if (text.charCodeAt(i) !== CHAR_COLON) return undefined;
    i++;
    if (i === n) return undefined; // a single trailing colon
    if (text.charCodeAt(i) === CHAR_COLON) {
      if (compressed) return undefined;
      compressed = true;
      groups = tail;
      i++;
    }
  }
  const count = head.length + tail.length;
  if (compressed ? count > 7 : count !== 8) return undefined;
  const out = head;
  for (let k = count; k < 8; k++) out.push(0);
  for (let k = 0; k < tail.length; k++) out[8 - tail.length + k] = tail[k] as number;
  return out;
}

/**
 * Parses an IP address; IPv4-mapped IPv6 becomes IPv4. Undefined for anything else (never
 * throws): IPv4 must be a plain dotted quad; IPv6 is any form ipaddr.js accepts (zone ids too).
 */
export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseDottedQuad(text);
  if (v4 >= 0) return { family: 4, value: v4 };
  if (!text.includes(":")) return undefined;
  let parts = parseIpv6Groups(text);
  if (parts === undefined) {
    try {
      parts = ipaddr.IPv6.parse(text).parts;
    } catch {
      return undefined;
    }
  }
  const words = wordsOf(parts);
  if (isMapped(words)) return { family: 4, value: words[3] };
  return { family: 6, words };
}

/** 32-bit mask with the top `bits` bits set (0 <= bits <= 32), as an unsigned number. */
function highMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** The range of `value/prefix` (host bits ignored). */
export function ipv4Range(value: number, prefix: number): IpRange {
  const mask = highMask(prefix);
  const start = (value & mask) >>> 0;
  return { family: 4, start, end: (start | ~mask) >>> 0, prefix };
}

/** The range of `words/prefix` (host bits ignored). */
export function ipv6Range(words: Ipv6Words, prefix: number): IpRange {
  const m0 = highMask(prefix);
  const m1 = highMask(prefix - 32);
  const m2 = highMask(prefix - 64);
  const m3 = highMask(prefix - 96);
  const start: Ipv6Words = [
    (words[0] & m0) >>> 0,
    (words[1] & m1) >>> 0,
    (words[2] & m2) >>> 0,
    (words[3] & m3) >>> 0,
  ];
  const end: Ipv6Words = [
    (start[0] | ~m0) >>> 0,
    (start[1] | ~m1) >>> 0,
    (start[2] | ~m2) >>> 0,
    (start[3] | ~m3) >>> 0,
  ];
  return { family: 6, start, end, prefix };
}

/**
 * Parses `address` or `address/prefix` into a range. A bare address is a /32 or /128; host
 * bits past the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`); an IPv4-mapped IPv6 block
 * of /96 or longer becomes the IPv4 block it maps. Returns an error message for bad input.
 */
export function parseCidr(text: string): IpRange | string {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIp(addrText);
  if (addr === undefined) return `not an IP address: ${JSON.stringify(addrText)}`;
  const wasV6 = addrText.includes(":");
  const max = wasV6 ? 128 : 32;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > max) {
      return `bad prefix length ${JSON.stringify(p)} (0-${max})`;
    }
    prefix = Number(p);
  }
  if (addr.family === 4) {
    if (!wasV6) return ipv4Range(addr.value, prefix);
    // An IPv4-mapped block: its IPv4 part carries prefix - 96 bits.
    if (prefix >= 96) return ipv4Range(addr.value, prefix - 96);
    return ipv6Range([0, 0, 0xffff, addr.value], prefix);
  }
  return ipv6Range(addr.words, prefix);
}

/** Compares two IPv6 word tuples (negative, 0, positive). */
export function compareWords(a: Ipv6Words, b: Ipv6Words): number {
  for (let i = 0; i < 4; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Dotted-quad text of a uint32. */
export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Canonical (RFC 5952) text of an IPv6 address: lower-case hex, the longest zero run as `::`. */
export function formatIpv6(words: Ipv6Words): string {
  const groups: number[] = [];
  for (const w of words) groups.push(w >>> 16, w & 0xffff);
  // The longest run of two or more zero groups (the first one on a tie) becomes "::".
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(":");
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/**
 * True for addresses routed on the public internet, the only ones a geo database can place.
 * Private, loopback, link-local, CGNAT, multicast, documentation and reserved blocks are not.
 * IPv6 counts as public only inside 2000::/3 (global unicast), less its special blocks.
 */
export function isPublicIp(addr: IpAddress): boolean {
  if (addr.family === 4) {
    const v = addr.value;
    const a = v >>> 24;
    const b = (v >>> 16) & 255;
    const c = (v >>> 8) & 255;
    if (a === 0 || a === 10 || a === 127 || a >= 224) return false; // this-net, RFC 1918, loopback, multicast, class E
    if (a === 100 && b >= 64 && b < 128) return false; // CGNAT 100.64/10
    if (a === 169 && b === 254) return false; // link-local
    if (a === 172 && b >= 16 && b < 32) return false; // RFC 1918
    if (a === 192 && b === 168) return false; // RFC 1918
    if (a === 192 && b === 0 && (c === 0 || c === 2)) return false; // IETF protocol, TEST-NET-1
    if (a === 198 && (b === 18 || b === 19)) return false; // benchmarking 198.18/15
    if (a === 198 && b === 51 && c === 100) return false; // TEST-NET-2
    if (a === 203 && b === 0 && c === 113) return false; // TEST-NET-3
    return true;
  }
  const w0 = addr.words[0];
  if (w0 >>> 29 !== 1) return false; // outside 2000::/3: ULA, link-local, multicast, ::1, ...
  if (w0 >>> 16 === 0x2001 && (w0 & 0xffff) < 0x200) {
    return false; // 2001::/23 IETF protocol assignments (Teredo, benchmarking, ORCHID)
  }
  if (w0 === 0x20010db8) return false; // documentation
  if (w0 >>> 12 === 0x3fff0) return false; // 3fff::/20 documentation (RFC 9637)
  return true;
}
