import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The house limits on size: no file in `src/` over 400 lines and no function (declaration,
 * expression, arrow, method, accessor or constructor) over 80. Sizes are counted from the
 * function's first line to its last, comments and blank lines included, as a reader sees it.
 */
const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 80;

/**
 * Functions allowed over the limit while someone else owns their file, by `file:name`. Each
 * entry says why; remove it when the function is split.
 */
const ALLOWED_LONG_FUNCTIONS: ReadonlyMap<string, string> = new Map();

const root = join(import.meta.dirname, "..", "..");
const srcDir = join(root, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** The name a reader would look for: the declared name, or the variable or property it is assigned to. */
function functionName(node: ts.FunctionLikeDeclaration): string {
  if (node.name !== undefined && ts.isIdentifier(node.name)) return node.name.text;
  if (ts.isConstructorDeclaration(node)) return "constructor";
  const parent = node.parent;
  if (
    (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) &&
    ts.isIdentifier(parent.name)
  ) {
    return parent.name.text;
  }
  return "<anonymous>";
}

interface Offender {
  readonly where: string;
  readonly name: string;
  readonly lines: number;
}

function longFunctions(file: string): Offender[] {
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const rel = relative(root, file);
  const found: Offender[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const fn = node as ts.FunctionLikeDeclaration;
      const start = source.getLineAndCharacterOfPosition(fn.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(fn.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES) {
        found.push({ where: `${rel}:${start + 1}`, name: functionName(fn), lines });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe("code size", () => {
  const files = sourceFiles(srcDir);

  it("finds the source files", () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it(`keeps every file in src/ at ${MAX_FILE_LINES} lines or fewer`, () => {
    const offenders = files
      .map((file) => ({ file, lines: readFileSync(file, "utf8").split("\n").length }))
      .filter(({ lines }) => lines > MAX_FILE_LINES)
      .map(({ file, lines }) => `${relative(root, file)}:1 (${lines} lines)`);
    if (offenders.length > 0)
      console.log(`files over ${MAX_FILE_LINES} lines:\n${offenders.join("\n")}`);
    expect(offenders).toEqual([]);
  });

  it(`keeps every function at ${MAX_FUNCTION_LINES} lines or fewer`, () => {
    const all = files.flatMap(longFunctions);
    const offenders = all
      .filter(
        ({ where, name }) => !ALLOWED_LONG_FUNCTIONS.has(`${where.replace(/:\d+$/, "")}:${name}`),
      )
      .map(({ where, name, lines }) => `${where} ${name} (${lines} lines)`);
    if (offenders.length > 0) {
      console.log(`functions over ${MAX_FUNCTION_LINES} lines:\n${offenders.join("\n")}`);
    }
    expect(offenders).toEqual([]);
  });

  it("allows only functions that are still long", () => {
    const long = new Set(
      files
        .flatMap(longFunctions)
        .map(({ where, name }) => `${where.replace(/:\d+$/, "")}:${name}`),
    );
    const stale = [...ALLOWED_LONG_FUNCTIONS.keys()].filter((key) => !long.has(key));
    expect(stale).toEqual([]);
  });
});
