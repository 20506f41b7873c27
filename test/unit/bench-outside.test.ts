import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type CpuProfile, summarise } from "../../bench/cpuprofile-summary.js";
import { processTree, treeCpuSeconds } from "../../bench/proc-cpu.js";
import {
  PRODUCTION_POLICY,
  writeBenchProductionPolicy,
  writeBlockList,
} from "../../bench/production-policy.js";
import { loadPolicyFile } from "../../src/access/policy.js";
import { parseIpList } from "../../src/geo/ip-list.js";

const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-outside-test-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("the outside bench's copy of the production policy", () => {
  it("keeps every signal, rule and route and changes only identity, limits and list paths", async () => {
    const dir = scratch();
    const shipped = (await loadPolicyFile(PRODUCTION_POLICY)).doc;
    const copy = (
      await loadPolicyFile(
        writeBenchProductionPolicy({
          issuer: "https://bench.example/",
          audience: "bench-api",
          jwksFile: join(dir, "jwks.json"),
          out: join(dir, "policy.yaml"),
        }),
      )
    ).doc;
    expect(copy.identity.issuers).toEqual(["https://bench.example/"]);
    expect(copy.identity.audiences).toEqual(["bench-api"]);
    expect(copy.identity.jwks).toMatchObject({ file: join(dir, "jwks.json") });
    expect(copy.routes).toEqual(shipped.routes);
    expect(copy.rules).toEqual(shipped.rules);
    expect(copy.decisions).toEqual(shipped.decisions);
    expect(copy.failure).toEqual(shipped.failure);
    const { velocity, ip_reputation, hosting_asn, ...otherSignals } = copy.signals;
    const shippedSignals = shipped.signals;
    expect(otherSignals).toEqual({
      ...shippedSignals,
      velocity: undefined,
      ip_reputation: undefined,
      hosting_asn: undefined,
    } as unknown as typeof otherSignals);
    expect({ ...velocity, person_ceiling: undefined }).toEqual({
      ...shippedSignals.velocity,
      person_ceiling: undefined,
    });
    expect(velocity.person_ceiling.enabled).toBe(shippedSignals.velocity.person_ceiling.enabled);
    expect(velocity.person_ceiling.requests).toBeGreaterThan(1_000_000);
    expect(ip_reputation.block.map((b) => b.file)).toEqual(
      shippedSignals.ip_reputation.block.map((b) =>
        join(PRODUCTION_POLICY, "..", b.file).replace(/\/\.\//g, "/"),
      ),
    );
    expect(hosting_asn.enabled).toBe(shippedSignals.hosting_asn.enabled);
    for (const [name, tier] of Object.entries(copy.tiers)) {
      const before = shipped.tiers[name];
      expect({ ...tier, limits: undefined, quota: undefined }).toEqual({
        ...before,
        limits: undefined,
        quota: undefined,
      });
      expect(Object.keys(tier.limits ?? {})).toEqual(Object.keys(before?.limits ?? {}));
      for (const v of Object.values(tier.limits ?? {})) expect(v).toBeGreaterThan(1_000_000);
    }
  });

  it("adds the full variant's block list, whose 10,000 CIDRs stay apart and away from the bench callers", () => {
    const dir = scratch();
    const file = writeBlockList(dir, 10_000);
    const { list, errors } = parseIpList(readFileSync(file, "utf8"), file);
    expect(errors).toEqual([]);
    expect(list.size).toBe(10_000);
    expect(list.has("81.2.69.160")).toBe(false);
    const text = writeBenchProductionPolicy({
      issuer: "i",
      audience: "a",
      jwksFile: "/k.json",
      out: join(dir, "full.yaml"),
      extraBlockList: file,
    });
    expect(readFileSync(text, "utf8")).toContain(file);
  });
});

describe("the CPU profile summary", () => {
  // root -> grpc-js handler -> node:net write -> native writeUtf8String
  //      -> ioredis Command  -> node:stream_base_commons -> native writeUtf8String
  //      -> (garbage collector), (idle)
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
  const nm = "/app/node_modules";
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)", ""), children: [2, 5, 8, 9] },
      {
        id: 2,
        callFrame: frame("onCall", `file://${nm}/@grpc/grpc-js/build/src/server.js`),
        children: [3],
      },
      {
        id: 3,
        callFrame: frame("writeGeneric", "node:internal/stream_base_commons"),
        children: [4],
      },
      { id: 4, callFrame: frame("writeUtf8String", "") },
      {
        id: 5,
        callFrame: frame("Command", `file://${nm}/ioredis/built/Command.js`),
        children: [6],
      },
      {
        id: 6,
        callFrame: frame("writeGeneric", "node:internal/stream_base_commons"),
        children: [7],
      },
      { id: 7, callFrame: frame("writeUtf8String", "") },
      { id: 8, callFrame: frame("(garbage collector)", "") },
      { id: 9, callFrame: frame("(idle)", "") },
    ],
    startTime: 0,
    endTime: 10_000,
    // one sample a millisecond: 1 ms grpc-js native, 3 ms ioredis native, 1 ms GC, 5 ms idle
    samples: [4, 7, 7, 7, 8, 9, 9, 9, 9, 9],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };

  it("charges a native function to the package that called it, not to node's own modules", () => {
    const text = summarise(profile, { checks: 10 });
    expect(text).toContain("| ioredis | 3 | 60.0% | 300.0 |");
    expect(text).toContain("| grpc-js | 1 | 20.0% | 100.0 |");
    expect(text).toContain("| GC | 1 | 20.0% | 100.0 |");
    expect(text).toContain("| writeUtf8String <- ioredis | 3 |");
    expect(text).toContain("5 ms busy, 5 ms idle");
  });

  it("counts only the samples inside the window, and spreads a measured CPU per Check by share", () => {
    const text = summarise(profile, { from: 0.0015, to: 0.0045, cpuPerCheckUs: 50 });
    // samples at 2, 3 and 4 ms: all three ioredis
    expect(text).toContain("| ioredis | 3 | 100.0% | 50.0 |");
    expect(text).not.toContain("| grpc-js |");
  });
});

describe("server CPU from /proc", () => {
  it("counts a process's children and the CPU they used", async () => {
    const before = treeCpuSeconds(process.pid);
    // a fixed amount of work (not a wall-clock loop), then a line, then idle until killed
    const work =
      "let x=1;for(let i=0;i<3e7;i++)x=(x*1103515245+12345)|0;console.log('done',x);setInterval(()=>{},1e3)";
    const child = spawn(process.execPath, ["-e", work], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise((resolve) => child.stdout.once("data", resolve));
      expect(processTree(process.pid)).toContain(child.pid);
      expect(treeCpuSeconds(child.pid ?? 0)).toBeGreaterThan(0);
      expect(treeCpuSeconds(process.pid)).toBeGreaterThan(
        before + treeCpuSeconds(child.pid ?? 0) / 2,
      );
    } finally {
      child.kill();
    }
  });
});
