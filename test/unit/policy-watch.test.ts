import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadPolicyFile, type Policy } from "../../src/access/policy.js";
import { createPolicyWatcher, type PolicyWatcher } from "../../src/config/policy-watch.js";

const policyText = (challengeAt: number) => `
version: 1
identity: { issuers: [i], audiences: [a] }
tiers: { free: { risk: { challenge_at: ${challengeAt}, deny_at: 90 } } }
`;

const watchers: PolicyWatcher[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setup(file: string) {
  const first = await loadPolicyFile(file);
  const seen: Policy[] = [];
  const errors: unknown[] = [];
  const w = createPolicyWatcher(
    {
      load: loadPolicyFile,
      onPolicy: (p) => void seen.push(p),
      onError: (e) => void errors.push(e),
    },
    { file, currentVersion: first.version, debounceMs: 30 },
  );
  watchers.push(w);
  return { w, seen, errors };
}

const challengeAt = (p: Policy | undefined) => p?.doc.tiers.free?.risk.challenge_at;

describe("policy watcher", () => {
  it("reloads a rewritten file and ignores a write with the same content", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const { seen, w } = await setup(file);
    writeFileSync(file, policyText(30));
    await until(() => seen.length === 1, "reload");
    expect(challengeAt(seen[0])).toBe(30);
    expect(await w.reload("manual")).toBe(false); // same version: nothing to do
    expect(seen).toHaveLength(1);
  });

  it("keeps the last good policy when the new file is invalid", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const { seen, errors } = await setup(file);
    writeFileSync(file, "version: 1\ntiers: { free: { bogus: 1 } }\n");
    await until(() => errors.length > 0, "error");
    expect(seen).toHaveLength(0);
    expect((errors[0] as { code?: string }).code).toBe("RISKGATE_POLICY_INVALID");
    writeFileSync(file, policyText(20));
    await until(() => seen.length === 1, "recovery");
    expect(challengeAt(seen[0])).toBe(20);
  });

  it("follows a Kubernetes ConfigMap update (..data symlink swap)", async () => {
    const dir = tempDir("rg-configmap-");
    mkdirSync(join(dir, "..2026_11_22_12_00_00.1"));
    writeFileSync(join(dir, "..2026_11_22_12_00_00.1", "policy.yaml"), policyText(40));
    symlinkSync("..2026_11_22_12_00_00.1", join(dir, "..data"));
    symlinkSync("..data/policy.yaml", join(dir, "policy.yaml"));
    const file = join(dir, "policy.yaml");
    const { seen } = await setup(file);
    // what the kubelet does: write a new timestamped dir, point a temp link at it, rename over ..data
    mkdirSync(join(dir, "..2026_11_22_12_05_00.2"));
    writeFileSync(join(dir, "..2026_11_22_12_05_00.2", "policy.yaml"), policyText(25));
    symlinkSync("..2026_11_22_12_05_00.2", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    await until(() => seen.length === 1, "configmap reload");
    expect(challengeAt(seen[0])).toBe(25);
  });

  it("reports a refused swap (keys failed) as an error and retries on the next change", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const first = await loadPolicyFile(file);
    const errors: unknown[] = [];
    let refuse = true;
    const live: number[] = [];
    const w = createPolicyWatcher(
      {
        load: loadPolicyFile,
        onPolicy: (p) => {
          if (refuse) throw new Error("keys unavailable");
          live.push(challengeAt(p) ?? 0);
        },
        onError: (e) => void errors.push(e),
      },
      { file, currentVersion: first.version, debounceMs: 30 },
    );
    watchers.push(w);
    writeFileSync(file, policyText(35));
    expect(await w.reload("signal")).toBe(false);
    await until(() => errors.length > 0, "refusal");
    refuse = false;
    expect(await w.reload("signal")).toBe(true);
    expect(live).toEqual([35]);
  });

  it("without a current version, a manual reload hands over the first policy, then only changes", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const seen: [number | undefined, string][] = [];
    const w = createPolicyWatcher(
      {
        load: loadPolicyFile,
        onPolicy: (p, reason) => void seen.push([challengeAt(p), reason]),
        onError: () => {},
      },
      { file },
    );
    watchers.push(w);
    expect(await w.reload("manual")).toBe(true);
    expect(await w.reload("signal")).toBe(false);
    expect(seen).toEqual([[40, "manual"]]);
  });

  it("follows a file that is a symlink into another directory, rewritten in place", async () => {
    // what a single-file bind mount looks like from inside: the directory never changes
    const elsewhere = tempDir("rg-target-");
    const dir = tempDir("rg-link-");
    writeFileSync(join(elsewhere, "real.yaml"), policyText(40));
    symlinkSync(join(elsewhere, "real.yaml"), join(dir, "policy.yaml"));
    const { seen } = await setup(join(dir, "policy.yaml"));
    writeFileSync(join(elsewhere, "real.yaml"), policyText(15));
    await until(() => seen.length === 1, "reload through the symlink");
    expect(challengeAt(seen[0])).toBe(15);
  });

  it("keeps watching when onError itself throws", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const first = await loadPolicyFile(file);
    const seen: Policy[] = [];
    let errors = 0;
    const w = createPolicyWatcher(
      {
        load: loadPolicyFile,
        onPolicy: (p) => void seen.push(p),
        onError: () => {
          errors++;
          throw new Error("observer bug");
        },
      },
      { file, currentVersion: first.version, debounceMs: 30 },
    );
    watchers.push(w);
    writeFileSync(file, "version: [");
    await until(() => errors > 0, "the error report");
    writeFileSync(file, policyText(10));
    await until(() => seen.length === 1, "recovery");
    expect(challengeAt(seen[0])).toBe(10);
  });

  it("counts one bad file once, though both SIGHUP and the file watcher reload it", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const { w, seen, errors } = await setup(file);
    writeFileSync(file, "version: [");
    expect(await w.reload("signal")).toBe(false); // the operator's SIGHUP right after the edit
    await new Promise((r) => setTimeout(r, 300)); // the watcher's debounced reload runs too
    expect(await w.reload("signal")).toBe(false); // and a second SIGHUP for the same file
    expect(errors).toHaveLength(1);
    writeFileSync(file, "version: [[");
    await until(() => errors.length === 2, "a different bad file is a new failure");
    writeFileSync(file, policyText(20));
    await until(() => seen.length === 1, "recovery");
    expect(errors).toHaveLength(2);
  });

  it("hands nothing over once closed", async () => {
    const dir = tempDir("rg-watch-");
    const file = join(dir, "policy.yaml");
    writeFileSync(file, policyText(40));
    const { w, seen } = await setup(file);
    w.close();
    writeFileSync(file, policyText(20));
    expect(await w.reload("manual")).toBe(false);
    expect(seen).toEqual([]);
  });
});
