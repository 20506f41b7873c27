import ipaddr from "ipaddr.js";
import { describe, expect, it } from "vitest";
import { formatIpv6, isPublicIp, parseCidr, parseIp } from "../../src/geo/ip-address.js";

describe("parseIp", () => {
  it("reads dotted quads as uint32", () => {
    expect(parseIp("0.0.0.0")).toEqual({ family: 4, value: 0 });
    expect(parseIp("255.255.255.255")).toEqual({ family: 4, value: 0xffffffff });
    expect(parseIp("192.0.2.1")).toEqual({ family: 4, value: 0xc0000201 });
  });

  it("refuses IPv4 forms whose meaning differs between parsers", () => {
    for (const text of [
      "127.1",
      "0x7f.0.0.1",
      "010.0.0.1",
      "1.2.3.04",
      "1.2.3.256",
      "1.2.3.",
      ".1.2.3",
      "1..2.3",
      " 1.2.3.4",
      "1.2.3.4 ",
    ]) {
      expect(parseIp(text), text).toBeUndefined();
    }
  });

  it("reads IPv6 as four words and turns IPv4-mapped addresses into IPv4", () => {
    expect(parseIp("2001:db8::1")).toEqual({ family: 6, words: [0x20010db8, 0, 0, 1] });
    expect(parseIp("::")).toEqual({ family: 6, words: [0, 0, 0, 0] });
    expect(parseIp("fe80::1%eth0")).toEqual({ family: 6, words: [0xfe800000, 0, 0, 1] });
    expect(parseIp("::ffff:192.0.2.1")).toEqual({ family: 4, value: 0xc0000201 });
    expect(parseIp("::ffff:c000:201")).toEqual({ family: 4, value: 0xc0000201 });
  });

  it("returns undefined for junk, never throws", () => {
    for (const text of ["", "junk", ":::", "1::2::3", "2001:db8::g", "[::1]", "::1/128"]) {
      expect(parseIp(text), text).toBeUndefined();
    }
  });
});

describe("parseIp's IPv6 fast path", () => {
  /** What ipaddr.js alone makes of the text, mapped addresses as IPv4. */
  function reference(text: string) {
    let parts: number[];
    try {
      parts = ipaddr.IPv6.parse(text).parts;
    } catch {
      return undefined;
    }
    const w = (i: number) => (((parts[i] ?? 0) << 16) | (parts[i + 1] ?? 0)) >>> 0;
    const words = [w(0), w(2), w(4), w(6)];
    if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff)
      return { family: 4, value: words[3] };
    return { family: 6, words };
  }

  it("agrees with ipaddr.js on generated valid, odd and broken IPv6 text", () => {
    let seed = 0x9e3779b9;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const noise = ":::.%g0fF1/ x";
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      // Groups with many zeros so that compression and zero runs happen often.
      const groups = Array.from({ length: 8 }, () => (rand(3) === 0 ? 0 : rand(0x10000)));
      let hex = groups.map((g) => {
        const t = g.toString(16);
        const padded = rand(4) === 0 ? t.padStart(4 + rand(2), "0") : t;
        return rand(2) === 0 ? padded.toUpperCase() : padded;
      });
      if (rand(3) === 0)
        hex = [...hex.slice(0, 6), `${rand(256)}.${rand(256)}.${rand(256)}.${rand(256)}`];
      if (rand(4) === 0) hex = ["0", "0", "0", "0", "0", "ffff", ...hex.slice(6)];
      let text = hex.join(":");
      if (rand(2) === 0) {
        // Compress a run (sometimes a run of non-zero groups, which is invalid).
        const from = rand(hex.length);
        const to = Math.min(hex.length, from + 1 + rand(8));
        text = `${hex.slice(0, from).join(":")}::${hex.slice(to).join(":")}`;
      }
      if (rand(4) === 0) {
        // Break it: insert, delete or replace one character.
        const at = rand(text.length + 1);
        const ch = noise[rand(noise.length)] as string;
        const op = rand(3);
        text =
          op === 0
            ? text.slice(0, at) + ch + text.slice(at)
            : op === 1
              ? text.slice(0, at) + text.slice(at + 1)
              : text.slice(0, at) + ch + text.slice(at + 1);
      }
      if (!text.includes(":")) continue;
      const expected = reference(text);
      if (expected !== undefined) accepted++;
      expect(parseIp(text), text).toEqual(expected);
    }
    expect(accepted).toBeGreaterThan(5_000);
    for (const text of [
      "::1.2.3.4",
      "::ffff:1.2.3.4",
      "0::1.2.3.4",
      "1::1.2.3.4",
      "::1:1.2.3.4",
      "1:2:3:4:5:6:7::",
      "::0:1:2:3:4:5:6:7",
      "2001:0db80::1",
      "::ffff:01.2.3.4",
    ]) {
      expect(parseIp(text), text).toEqual(reference(text));
    }
  });
});

describe("parseCidr", () => {
  it("gives the first and last address and the prefix", () => {
    expect(parseCidr("10.0.0.0/8")).toEqual({
      family: 4,
      start: 0x0a000000,
      end: 0x0affffff,
      prefix: 8,
    });
    expect(parseCidr("1.2.3.4")).toEqual({
      family: 4,
      start: 0x01020304,
      end: 0x01020304,
      prefix: 32,
    });
    expect(parseCidr("2001:db8::/32")).toEqual({
      family: 6,
      start: [0x20010db8, 0, 0, 0],
      end: [0x20010db8, 0xffffffff, 0xffffffff, 0xffffffff],
      prefix: 32,
    });
    expect(parseCidr("::ffff:10.0.0.0/104")).toEqual({
      family: 4,
      start: 0x0a000000,
      end: 0x0affffff,
      prefix: 8,
    });
  });
});

describe("formatIpv6", () => {
  it("writes RFC 5952 text", () => {
    expect(formatIpv6([0x20010db8, 0, 0, 1])).toBe("2001:db8::1");
    expect(formatIpv6([0, 0, 0, 0])).toBe("::");
    expect(formatIpv6([0x20010db8, 0, 1, 0])).toBe("2001:db8::1:0:0"); // first of equal runs
    expect(formatIpv6([0x20010db8, 0x10000, 0x10000, 0x10000])).toBe("2001:db8:1:0:1:0:1:0"); // no run of 2
    expect(formatIpv6([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff])).toBe(
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    );
  });

  it("agrees with ipaddr.js on generated addresses", () => {
    let seed = 0x1badb002;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const word = () => (rand() % 3 === 0 ? 0 : rand() % 2 === 0 ? rand() & 0xffff : rand());
    for (let i = 0; i < 5000; i++) {
      const words = [word(), word(), word(), word()] as const;
      const parts: number[] = [];
      for (const w of words) parts.push(w >>> 16, w & 0xffff);
      const text = new ipaddr.IPv6(parts).toRFC5952String();
      if (text.includes(".")) continue; // ipaddr.js writes mapped addresses with a dotted quad
      expect(formatIpv6(words)).toBe(text);
    }
  });
});

describe("isPublicIp", () => {
  const pub = (ip: string) => {
    const addr = parseIp(ip);
    if (addr === undefined) throw new Error(`bad test address ${ip}`);
    return isPublicIp(addr);
  };

  it("accepts routed unicast addresses", () => {
    for (const ip of [
      "8.8.8.8",
      "1.1.1.1",
      "100.63.255.255",
      "100.128.0.0",
      "172.15.255.255",
      "172.32.0.0",
      "192.0.1.1",
      "198.20.0.1",
      "223.255.255.255",
      "2001:4860:4860::8888",
      "2a00:1450::1",
      "2002:808:808::1",
    ]) {
      expect(pub(ip), ip).toBe(true);
    }
  });

  it("refuses private, loopback, link-local, CGNAT, multicast, documentation and reserved blocks", () => {
    for (const ip of [
      "0.1.2.3",
      "10.1.2.3",
      "127.0.0.1",
      "169.254.1.1",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "100.64.0.1",
      "100.127.255.255",
      "192.0.0.8",
      "192.0.2.1",
      "198.18.0.1",
      "198.19.255.255",
      "198.51.100.1",
      "203.0.113.1",
      "224.0.0.1",
      "240.0.0.1",
      "255.255.255.255",
      "::",
      "::1",
      "fe80::1",
      "fc00::1",
      "fd12:3456::1",
      "ff02::1",
      "2001:db8::1",
      "2001::1",
      "2001:1ff::1",
      "3fff::1",
      "64:ff9b::808:808",
    ]) {
      expect(pub(ip), ip).toBe(false);
    }
  });
});
