import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAsnListWatcher, parseAsnList } from "../../src/geo/asn-list.js";

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/ip-lists/${name}`, import.meta.url), "utf8");

describe("parseAsnList", () => {
  it("reads numbers with or without the AS prefix, names and CSV columns after them, comments", () => {
    const { list, errors } = parseAsnList(fixture("hosting-asns.txt"), "hosting");
    expect(errors).toEqual([]);
    expect(list.size).toBe(5);
    expect(list.source).toBe("hosting");
    for (const asn of [16509, 14061, 15169, 24940, 396982])
      expect(list.has(asn), String(asn)).toBe(true);
    expect(list.has(3320)).toBe(false);
  });

  it("reports bad lines with their numbers and keeps the rest", () => {
    const text = "ASN,Entity\r\nAS13335\r\nAS-FOO\r\n4294967296\r\n4294967295\r\n0123\r\n\r\n";
    const { list, errors } = parseAsnList(text, "x");
    expect(errors).toEqual([
      { line: 1, message: 'not an AS number: "ASN"' },
      { line: 3, message: 'not an AS number: "AS-FOO"' },
      { line: 4, message: 'not an AS number: "4294967296"' },
      { line: 6, message: 'not an AS number: "0123"' },
    ]);
    expect(list.size).toBe(2);
    expect(list.has(13335)).toBe(true);
    expect(list.has(4294967295)).toBe(true);
  });
});

describe("createAsnListWatcher", () => {
  it("loads the file and reloads it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "riskgate-asn-"));
    const file = join(dir, "hosting.txt");
    writeFileSync(file, "AS16509\n");
    const loaded: number[] = [];
    const errors: unknown[] = [];
    const watcher = createAsnListWatcher(
      { onLoad: (list) => loaded.push(list.size), onError: (err) => errors.push(err) },
      { file, debounceMs: 20 },
    );
    try {
      await watcher.ready();
      expect(watcher.current().has(16509)).toBe(true);
      writeFileSync(file, "AS16509\nAS14061\n");
      await watcher.reload();
      expect(watcher.current().has(14061)).toBe(true);
      expect(loaded.at(-1)).toBe(2);
      expect(errors).toEqual([]);
    } finally {
      watcher.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
