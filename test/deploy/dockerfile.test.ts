import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * No Docker engine runs on these machines, so the Dockerfile is checked where it can be: its
 * instructions are parsed, every file it copies exists, and the runtime stage's contract is
 * exercised for real: a production-only `npm ci` of the built app, the image's ENTRYPOINT + CMD
 * started with its ENV, the HEALTHCHECK command polled until it passes, SIGTERM drains to exit 0.
 */
const run = promisify(execFile);

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

function parseDockerfile(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, " ");
  const out: Instruction[] = [];
  let stage = -1;
  for (const raw of joined.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] as string).toUpperCase();
    if (op === "FROM") stage++;
    out.push({ op, args: m[2] as string, stage });
  }
  return out;
}

const dockerfile = parseDockerfile(readFileSync("Dockerfile", "utf8"));
const runtimeStage = Math.max(...dockerfile.map((i) => i.stage));
const inRuntime = (op: string) => dockerfile.filter((i) => i.op === op && i.stage === runtimeStage);
const execForm = (args: string) => JSON.parse(args.replace(/^.*?(\[.*\])\s*$/, "$1")) as string[];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe("Dockerfile", () => {
  it("is multi-stage, non-root, exec-form, with health check and documented ports", () => {
    expect(dockerfile.filter((i) => i.op === "FROM").length).toBeGreaterThanOrEqual(2);
    expect(inRuntime("USER")[0]?.args).toMatch(/^\d+(:\d+)?$/);
    expect(inRuntime("ENTRYPOINT")[0]?.args.trim().startsWith("[")).toBe(true);
    expect(inRuntime("EXPOSE")[0]?.args.split(/\s+/)).toEqual(["9191", "9464"]);
    expect(inRuntime("RUN").some((i) => i.args.includes("npm ci --omit=dev"))).toBe(true);
    expect(inRuntime("HEALTHCHECK")[0]?.args).toContain('"health"');
  });

  it("copies only files that exist (or that an earlier stage built)", () => {
    for (const copy of dockerfile.filter((i) => i.op === "COPY")) {
      if (copy.args.includes("--from=")) continue;
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith("--"));
      for (const source of parts.slice(0, -1))
        expect(existsSync(source), `COPY ${source}`).toBe(true);
    }
    const ignored = readFileSync(".dockerignore", "utf8")
      .split("\n")
      .map((l) => l.trim());
    for (const needed of ["src", "protos", "policies", "package.json", "package-lock.json"]) {
      expect(ignored).not.toContain(needed);
    }
  });

  it("runs from a production-only install: starts, turns healthy, drains on SIGTERM", async () => {
    expect(existsSync("dist/src/cli/main.js"), "npm test builds dist/ first").toBe(true);
    const app = mkdtempSync(join(tmpdir(), "riskgate-image-"));
    for (const path of ["dist", "protos", "policies", "package.json", "package-lock.json"]) {
      cpSync(path, join(app, path), { recursive: true });
    }
    await run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], {
      cwd: app,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(existsSync(join(app, "node_modules", "@biomejs"))).toBe(false); // no dev dependencies

    const env: Record<string, string> = {};
    for (const i of inRuntime("ENV")) {
      for (const m of i.args.matchAll(/(\w+)=(\S+)/g))
        env[m[1] as string] = (m[2] as string).replace(/^\/app\//, `${app}/`);
    }
    const port = await freePort();
    env.RISKGATE_GRPC_ADDRESS = `127.0.0.1:${port}`;
    env.RISKGATE_METRICS_ADDRESS = "127.0.0.1:0";
    env.RISKGATE_DEV = "true";
    env.RISKGATE_DEV_KEYS_DIR = join(app, "tmp-keys");
    const [cmd, ...entry] = execForm(inRuntime("ENTRYPOINT")[0]?.args ?? "[]");
    const args = [...entry, ...execForm(inRuntime("CMD")[0]?.args ?? "[]")];
    expect(cmd).toBe("node");
    const child = spawn(process.execPath, args, {
      cwd: app,
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    try {
      const [, ...health] = execForm(inRuntime("HEALTHCHECK")[0]?.args ?? "[]");
      const deadline = Date.now() + 30_000;
      let healthy = false;
      while (!healthy && Date.now() < deadline) {
        healthy = await run(process.execPath, [...health, "--address", `127.0.0.1:${port}`], {
          cwd: app,
        }).then(
          () => true,
          () => false,
        );
        if (!healthy) await new Promise((r) => setTimeout(r, 250));
      }
      expect(healthy).toBe(true);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 180_000);
});
