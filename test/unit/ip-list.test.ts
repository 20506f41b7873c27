import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  compareWords,
  formatIpv4,
  formatIpv6,
  type IpRange,
  parseCidr,
} from "../../src/geo/ip-address.js";
import { type IpList, parseIpList } from "../../src/geo/ip-list.js";

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/ip-lists/${name}`, import.meta.url), "utf8");

function parseClean(text: string, source = "test"): IpList {
  const { list, errors } = parseIpList(text, source);
  expect(errors).toEqual([]);
  return list;
}

describe("feed formats", () => {
  it("reads a FireHOL netset: # comments, CIDRs and bare addresses", () => {
    const list = parseClean(fixture("firehol-level1.netset"), "firehol_level1");
    expect(list.size).toBe(7);
    expect(list.source).toBe("firehol_level1");
    expect(list.match("5.188.11.200")).toBe("5.188.10.0/23");
    expect(list.match("185.220.100.240")).toBe("185.220.100.240/32");
    expect(list.has("185.220.100.241")).toBe(false);
    expect(list.has("0.1.2.3")).toBe(true);
    expect(list.has("8.8.8.8")).toBe(false);
  });

  it("reads Spamhaus DROP with `; SBL` comments, and its JSON-lines edition alike", () => {
    const text = parseClean(fixture("spamhaus-drop.txt"));
    expect(text.size).toBe(5);
    expect(text.match("1.10.20.1")).toBe("1.10.16.0/20");
    expect(text.match("27.126.175.255")).toBe("27.126.160.0/20");
    expect(text.has("27.126.176.0")).toBe(false);

    const json = parseClean(fixture("spamhaus-drop_v4.jsonl"));
    expect(json.size).toBe(3);
    expect(json.match("2.56.195.9")).toBe("2.56.192.0/22");
  });

  it("reads Spamhaus DROPv6", () => {
    const list = parseClean(fixture("spamhaus-drop_v6.txt"));
    expect(list.size).toBe(3);
    expect(list.match("2a06:5287:ffff::1")).toBe("2a06:5280::/29");
    expect(list.match("2001:678:738:1::5")).toBe("2001:678:738::/48");
    expect(list.has("2001:678:739::1")).toBe(false);
  });

  it("reads the Tor bulk exit list (one address a line) and Tor's exit-addresses document", () => {
    const bulk = parseClean(fixture("tor-bulk-exit-list.txt"));
    expect(bulk.size).toBe(5);
    expect(bulk.match("192.42.116.16")).toBe("192.42.116.16/32");
    expect(bulk.match("2a0b:f4c2:2:0:0:0:0:1")).toBe("2a0b:f4c2:2::1/128");
    expect(bulk.has("192.42.116.17")).toBe(false);

    const doc = parseClean(fixture("tor-exit-addresses.txt"));
    expect(doc.size).toBe(2);
    expect(doc.has("162.247.74.201")).toBe(true);
    expect(doc.has("185.220.101.33")).toBe(true);
  });

  it("reads an allow list with trailing comments, IPv4 and IPv6", () => {
    const list = parseClean(fixture("office-allow.txt"));
    expect(list.size).toBe(3);
    expect(list.match("203.0.113.77")).toBe("203.0.113.0/24");
    expect(list.match("2001:db8:1234:ffff::9")).toBe("2001:db8:1234::/48");
    expect(list.match("192.0.2.10")).toBe("192.0.2.10/32");
  });

  it("tolerates CRLF line ends, a byte order mark, blank and whitespace-only lines", () => {
    const text = `\uFEFF# list\r\n\r\n  10.0.0.0/8  \r\n\t\r\n2001:db8::/32\r\n`;
    const list = parseClean(text);
    expect(list.size).toBe(2);
    expect(list.has("10.9.9.9")).toBe(true);
    expect(list.has("2001:db8:ffff::1")).toBe(true);
  });

  it("an empty or comment-only file is an empty list", () => {
    for (const text of ["", "\n\n", "# nothing yet\n; still nothing\n"]) {
      const list = parseClean(text);
      expect(list.size).toBe(0);
      expect(list.has("1.2.3.4")).toBe(false);
      expect(list.has("::1")).toBe(false);
    }
  });
});

describe("bad lines", () => {
  it("are skipped and reported with their line numbers; the rest loads", () => {
    const text = [
      "# header", // 1
      "10.0.0.0/8", // 2
      "300.1.1.1", // 3
      "10.0.0.0/33", // 4
      "2001:db8::/129", // 5
      "hello", // 6
      "1.2.3.4 5.6.7.8", // 7
      "010.0.0.1", // 8
      "1.2.3.4/", // 9
      '{"cidr": 5}', // 10
      "{not json", // 11
      "192.0.2.0/24 ; fine", // 12
      "127.1", // 13
      "1.2.3.4/+8", // 14
    ].join("\n");
    const { list, errors } = parseIpList(text, "bad");
    expect(errors.map((e) => e.line)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]);
    expect(errors[0]?.message).toMatch(/not an IP address: "300.1.1.1"/);
    expect(errors[1]?.message).toMatch(/bad prefix length "33" \(0-32\)/);
    expect(errors[2]?.message).toMatch(/bad prefix length "129" \(0-128\)/);
    expect(errors[4]?.message).toMatch(/unexpected text after "1.2.3.4"/);
    expect(errors[7]?.message).toMatch(/"cidr"/);
    expect(errors[8]?.message).toMatch(/JSON/);
    expect(list.size).toBe(2);
    expect(list.has("10.1.1.1")).toBe(true);
    expect(list.has("192.0.2.200")).toBe(true);
  });
});

describe("lookups", () => {
  it("matches IPv4-mapped IPv6 addresses against IPv4 blocks, and mapped blocks as IPv4", () => {
    const list = parseClean("10.0.0.0/8\n::ffff:192.0.2.0/120\n");
    expect(list.match("::ffff:10.1.2.3")).toBe("10.0.0.0/8");
    expect(list.match("::FFFF:0a01:0203")).toBe("10.0.0.0/8");
    expect(list.match("192.0.2.5")).toBe("192.0.2.0/24");
    expect(list.match("::ffff:192.0.2.5")).toBe("192.0.2.0/24");
    expect(list.size).toBe(2);
  });

  it("folds nested and duplicate blocks into the block that contains them", () => {
    const list = parseClean(
      [
        "10.1.2.3",
        "10.1.0.0/16",
        "10.0.0.0/8",
        "10.0.0.0/8",
        "10.200.0.0/9",
        "2001:db8:1::/48",
        "2001:db8::/32",
        "2001:db8::1",
      ].join("\n"),
    );
    expect(list.size).toBe(2);
    expect(list.match("10.1.2.3")).toBe("10.0.0.0/8");
    expect(list.match("10.255.255.255")).toBe("10.0.0.0/8");
    expect(list.match("2001:db8:1::7")).toBe("2001:db8::/32");
    expect(list.has("11.0.0.0")).toBe(false);
    expect(list.has("9.255.255.255")).toBe(false);
  });

  it("keeps adjacent blocks apart so each match names its own block", () => {
    const list = parseClean("192.168.1.0/24\n192.168.0.0/24\n");
    expect(list.size).toBe(2);
    expect(list.match("192.168.0.255")).toBe("192.168.0.0/24");
    expect(list.match("192.168.1.0")).toBe("192.168.1.0/24");
    expect(list.has("192.168.2.0")).toBe(false);
  });

  it("clears host bits past the prefix", () => {
    const list = parseClean("10.1.2.3/8\n2001:db8:aaaa::1/32\n");
    expect(list.match("10.200.0.1")).toBe("10.0.0.0/8");
    expect(list.match("2001:db8:ffff::")).toBe("2001:db8::/32");
  });

  it("handles /0 and host-route edges in both families", () => {
    const all4 = parseClean("0.0.0.0/0");
    expect(all4.has("0.0.0.0")).toBe(true);
    expect(all4.has("255.255.255.255")).toBe(true);
    expect(all4.has("::ffff:1.2.3.4")).toBe(true);
    expect(all4.has("2001:db8::1")).toBe(false);
    expect(all4.match("8.8.8.8")).toBe("0.0.0.0/0");

    const all6 = parseClean("::/0");
    expect(all6.has("::")).toBe(true);
    expect(all6.has("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(true);
    // IPv6 blocks never match IPv4 clients, even ::/0 (mapped addresses are IPv4).
    expect(all6.has("1.2.3.4")).toBe(false);
    expect(all6.match("2001:db8::1")).toBe("::/0");

    const hosts = parseClean(
      "0.0.0.0/32\n255.255.255.255/32\n203.0.113.7/32\n::/128\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n",
    );
    expect(hosts.size).toBe(5);
    expect(hosts.has("0.0.0.0")).toBe(true);
    expect(hosts.has("0.0.0.1")).toBe(false);
    expect(hosts.has("255.255.255.255")).toBe(true);
    expect(hosts.has("255.255.255.254")).toBe(false);
    expect(hosts.has("203.0.113.7")).toBe(true);
    expect(hosts.has("203.0.113.6")).toBe(false);
    expect(hosts.has("203.0.113.8")).toBe(false);
    expect(hosts.has("::")).toBe(true);
    expect(hosts.has("::1")).toBe(false);
    expect(hosts.match("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
    );
    expect(hosts.has("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")).toBe(false);
  });

  it("spans word boundaries inside IPv6 (prefixes of 31, 33, 64, 65, 96, 127)", () => {
    const list = parseClean(
      [
        "2001:db8::/31",
        "2a00::/33",
        "2a01:0:0:1::/64",
        "2a02::8000:0:0:0/65",
        "2a03::/96",
        "2a04::/127",
      ].join("\n"),
    );
    expect(list.has("2001:db9:ffff::1")).toBe(true);
    expect(list.has("2001:dba::")).toBe(false);
    expect(list.has("2a00:0:7fff:ffff::")).toBe(true);
    expect(list.has("2a00:0:8000::")).toBe(false);
    expect(list.has("2a01:0:0:1:ffff:ffff:ffff:ffff")).toBe(true);
    expect(list.has("2a01:0:0:2::")).toBe(false);
    expect(list.has("2a02::ffff:ffff:ffff:ffff")).toBe(true);
    expect(list.has("2a02::7fff:ffff:ffff:ffff")).toBe(false);
    expect(list.has("2a03::ffff:ffff")).toBe(true);
    expect(list.has("2a03::1:0:0")).toBe(false);
    expect(list.has("2a04::1")).toBe(true);
    expect(list.has("2a04::2")).toBe(false);
  });

  it("never matches invalid input", () => {
    const list = parseClean("0.0.0.0/0\n::/0\n");
    for (const junk of [
      "",
      " ",
      "junk",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "1.2.3.4/8",
      "::g",
      "1::2::3",
      "01.2.3.4",
    ]) {
      expect(list.has(junk), junk).toBe(false);
      expect(list.match(junk), junk).toBeUndefined();
    }
  });

  it("agrees with a linear scan on random blocks, random probes and every block's edges", () => {
    // A fixed-seed generator keeps the case reproducible.
    let seed = 0x2545f491;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const v4 = () => formatIpv4(rand());
    // IPv6 blocks and probes share a few /32s so that they meet often enough.
    const v6 = () => formatIpv6([0x20010000 | (rand() % 64), rand(), rand(), rand()]);
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      lines.push(i % 2 === 0 ? `${v4()}/${12 + (rand() % 21)}` : `${v6()}/${33 + (rand() % 64)}`);
    }
    const list = parseClean(lines.join("\n"));
    const ranges = lines.map((l) => parseCidr(l) as IpRange);
    const linear = (ip: string) => {
      const probe = parseCidr(ip) as IpRange;
      return ranges.some((r) => {
        if (r.family === 4 && probe.family === 4)
          return probe.start >= r.start && probe.start <= r.end;
        if (r.family === 6 && probe.family === 6) {
          return compareWords(probe.start, r.start) >= 0 && compareWords(probe.start, r.end) <= 0;
        }
        return false;
      });
    };
    const probes: string[] = [];
    for (let i = 0; i < 2000; i++) probes.push(i % 2 === 0 ? v4() : v6());
    for (const r of ranges.slice(0, 400)) {
      if (r.family === 4) {
        probes.push(formatIpv4(r.start), formatIpv4(r.end));
        if (r.start > 0) probes.push(formatIpv4(r.start - 1));
        if (r.end < 0xffffffff) probes.push(formatIpv4(r.end + 1));
      } else {
        probes.push(formatIpv6(r.start), formatIpv6(r.end));
        probes.push(formatIpv6([r.end[0], r.end[1], r.end[2], (r.end[3] + 1) >>> 0]));
      }
    }
    let hits = 0;
    for (const ip of probes) {
      const expected = linear(ip);
      if (expected) hits++;
      expect(list.has(ip), ip).toBe(expected);
    }
    // The case is only meaningful when both answers occur often.
    expect(hits).toBeGreaterThan(probes.length / 5);
    expect(hits).toBeLessThan(probes.length - probes.length / 5);
  });
});
