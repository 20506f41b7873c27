import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { parsePolicy } from "../../src/access/policy.js";

/**
 * Every config a user copies from the docs is a file the tests run or check. A config block
 * (YAML, nginx, Caddyfile) in README.md or docs/ is preceded by a marker saying which:
 *   <!-- file: PATH -->             the block is the whole file
 *   <!-- excerpt: PATH -->          the block is a run of the file's lines (indent removed)
 *   <!-- policy-fragment: PATH -->  the block, merged onto the complete policy PATH, validates
 * and every relative link of those pages points at a file (and heading) that exists.
 */

const CONFIG_LANGUAGES = new Set(["yaml", "yml", "nginx", "caddyfile"]);

function markdown(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return markdown(path);
    return e.name.endsWith(".md") ? [path] : [];
  });
}

const PAGES = ["README.md", ...markdown("docs")];

interface Block {
  readonly page: string;
  readonly line: number;
  readonly language: string;
  readonly body: string;
  /** The marker on the line before the fence: kind and path. */
  readonly marker?: { kind: string; path: string };
}

function blocks(page: string): Block[] {
  const lines = readFileSync(page, "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)$/.exec(lines[i] as string);
    if (open === null) continue;
    const end = lines.indexOf("```", i + 1);
    const m = /^<!-- (file|excerpt|policy-fragment): (\S+) -->$/.exec(lines[i - 1] ?? "");
    out.push({
      page,
      line: i + 1,
      language: open[1] as string,
      body: lines.slice(i + 1, end).join("\n"),
      ...(m === null ? {} : { marker: { kind: m[1] as string, path: m[2] as string } }),
    });
    i = end;
  }
  return out;
}

const ALL = PAGES.flatMap(blocks);
const where = (b: Block) => `${b.page}:${b.line}`;

/** Whether `body`'s lines, all shifted by one indent, are a run of `file`'s lines. */
function isExcerpt(body: string, file: string): boolean {
  const want = body.split("\n");
  const have = file.split("\n");
  for (let start = 0; start + want.length <= have.length; start++) {
    const first = have[start] as string;
    const indent = first.slice(0, first.length - first.trimStart().length);
    if (want.every((l, k) => have[start + k] === (l === "" ? "" : indent + l))) return true;
  }
  return false;
}

type Yaml = Record<string, unknown>;
const isMap = (v: unknown): v is Yaml => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * `fragment` pasted over `base`, as a user would: maps merge key by key; a list gets the
 * fragment's items first, each replacing the base's item of the same `name` (routes, rules).
 */
function merge(base: unknown, fragment: unknown): unknown {
  if (isMap(base) && isMap(fragment)) {
    const out: Yaml = { ...base };
    for (const [k, v] of Object.entries(fragment)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  }
  if (Array.isArray(base) && Array.isArray(fragment)) {
    const names = new Set(fragment.map((item) => (isMap(item) ? item.name : undefined)));
    return [...fragment, ...base.filter((item) => !(isMap(item) && names.has(item.name)))];
  }
  return fragment;
}

describe("config snippets in the docs are the files the tests run", () => {
  it("finds the configs the pages show", () => {
    const marked = ALL.filter((b) => b.marker !== undefined).map((b) => b.marker?.path);
    expect(marked).toEqual(
      expect.arrayContaining([
        "proxies/nginx/riskgate.conf",
        "proxies/caddy/Caddyfile",
        "proxies/traefik/dynamic.yaml",
        "proxies/envoy/http-ext-authz.yaml",
        "policies/examples/browser-challenge.yaml",
        "envoy/envoy.yaml",
      ]),
    );
  });

  it("marks every config block with the file it comes from", () => {
    const unmarked = ALL.filter((b) => CONFIG_LANGUAGES.has(b.language) && b.marker === undefined);
    expect(unmarked.map(where)).toEqual([]);
  });

  it.each(ALL.filter((b) => b.marker !== undefined).map((b) => [where(b), b] as const))(
    "%s is what its marker says",
    (_, b) => {
      const { kind, path } = b.marker as { kind: string; path: string };
      const file = readFileSync(path, "utf8");
      if (kind === "file") expect(`${b.body}\n`).toBe(file);
      else if (kind === "excerpt") expect(isExcerpt(b.body, file), `a run of ${path}`).toBe(true);
      else {
        const merged = merge(parse(file), parse(b.body));
        expect(() => parsePolicy(stringify(merged), `${where(b)} over ${path}`)).not.toThrow();
      }
    },
  );

  it("an excerpt or a changed file is caught", () => {
    const conf = readFileSync("proxies/nginx/riskgate.conf", "utf8");
    expect(isExcerpt("location /.riskgate/ {\n    proxy_pass http://riskgate_http;", conf)).toBe(
      true,
    );
    expect(isExcerpt("location /.riskgate/ {\n    proxy_pass http://riskgate;", conf)).toBe(false);
    const fragment =
      "rules:\n  - name: x\n    when: { reasons_any: [no.such_code] }\n    action: deny";
    const demo = parse(readFileSync("policies/demo.yaml", "utf8"));
    expect(() => parsePolicy(stringify(merge(demo, parse(fragment))), "fragment")).toThrow(
      /no\.such_code/,
    );
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

function anchors(page: string): Set<string> {
  const text = readFileSync(page, "utf8").replace(/^```[\s\S]*?^```$/gm, "");
  return new Set([...text.matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1] as string)));
}

describe("links in the docs", () => {
  it("point at files and headings that exist", () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const text = readFileSync(page, "utf8").replace(/^```[\s\S]*?^```$/gm, "");
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        const [path = "", anchor] = target.split("#");
        const file = path === "" ? page : normalize(join(dirname(page), path));
        if (!existsSync(file)) broken.push(`${page}: ${target}`);
        else if (anchor !== undefined && statSync(file).isFile() && file.endsWith(".md")) {
          if (!anchors(file).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});

describe("the README", () => {
  it("stays a short entry point (under 15 KB): the manual lives in docs/", () => {
    expect(statSync("README.md").size).toBeLessThan(15 * 1024);
  });
});
