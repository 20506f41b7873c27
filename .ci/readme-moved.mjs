#!/usr/bin/env node
// Lists what an old README says that README.md and docs/ no longer do: every heading, table
// row and line of prose or code of OLD_README is looked for in the current tree, with link
// targets, heading levels and line breaks ignored (pages moved, links were rewritten).
// With BASE_README, only the lines OLD_README adds to BASE_README are looked for: what a README
// edit made on another branch (from the same base) said that must be re-applied to the tree:
//   git show OTHER_BRANCH:README.md > /tmp/theirs.md
//   git show "$(git merge-base HEAD OTHER_BRANCH)":README.md > /tmp/base.md
//   node .ci/readme-moved.mjs /tmp/theirs.md /tmp/base.md
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [oldPath, basePath] = process.argv.slice(2);
if (oldPath === undefined) {
  process.stderr.write("usage: node .ci/readme-moved.mjs OLD_README.md [BASE_README.md]\n");
  process.exit(2);
}

/** Markdown files of the current tree that may hold moved text. */
function pages(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return pages(path);
    return e.name.endsWith(".md") ? [path] : [];
  });
}

const normalise = (text) =>
  text
    .replace(/\]\([^)\s]*\)/g, "]()") // link targets were rewritten for the new page's place
    .replace(/^#+\s+/gm, "") // heading levels changed with the page
    .replace(/\s+/g, " ")
    .trim();

const files = [
  "README.md",
  "envoy/README.md",
  "k8s/README.md",
  ...pages("docs"),
  ...pages("proxies"),
];
const tree = files.map((f) => normalise(readFileSync(f, "utf8"))).join(" ");
const old = readFileSync(oldPath, "utf8").split("\n");
const base = new Set(basePath === undefined ? [] : readFileSync(basePath, "utf8").split("\n"));
const missing = [];
old.forEach((line, i) => {
  const text = normalise(line);
  if (text === "" || base.has(line) || /^(```\w*|\|[-| ]+\|)$/.test(text)) return;
  if (!tree.includes(text)) missing.push(`${i + 1}: ${line}`);
});
process.stdout.write(
  missing.length === 0 ? "every line is in the tree\n" : `${missing.join("\n")}\n`,
);
process.exit(missing.length === 0 ? 0 : 1);
