import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { buildPolicySnapshot } from "../../src/access/policy-snapshot.js";
import { createListRegistry } from "../../src/geo/list-registry.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { fakeIdentifier } from "../helpers/fake-identifier.js";

const demo = readFileSync("policies/demo.yaml", "utf8");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "riskgate-runtime-"));
  writeFileSync(join(dir, "a.txt"), "198.51.100.0/24\n");
  writeFileSync(join(dir, "b.txt"), "192.0.2.0/24\n");
  const reloads: string[] = [];
  const lists = createListRegistry({
    logger: createLogger("silent"),
    onReload: (file, ok) => reloads.push(`${file.slice(dir.length + 1)}:${ok}`),
  });
  const policy = (files: string[]) =>
    parsePolicy(
      demo.replace(
        /^signals:\n/m,
        `signals:\n  ip_reputation: { block: [${files.map((f) => `{ file: ${f} }`).join(", ")}] }\n`,
      ),
      join(dir, "policy.yaml"), // list paths resolve against the policy's folder
    );
  /** Rewrites a list file and waits past the watcher's debounce. */
  const rewrite = async (file: string, text: string) => {
    writeFileSync(join(dir, file), text);
    await sleep(400);
  };
  return { lists, policy, reloads, rewrite };
}

describe("runtime snapshots and their lists", () => {
  it("builds routes, lists and identity, and reuses the identifier when identity is unchanged", async () => {
    const { lists, policy } = setup();
    const identifier = fakeIdentifier({});
    const first = await buildPolicySnapshot(policy(["a.txt"]), {
      lists,
      identifier: () => identifier,
    });
    expect(first.lists.ipList("a.txt")?.match("198.51.100.1")).toBe("198.51.100.0/24");
    expect(first.routes.byName.has("admin-users")).toBe(true);
    const next = await buildPolicySnapshot(policy(["b.txt"]), {
      lists,
      previous: first,
      identifier: () => {
        throw new Error("not called: same identity section");
      },
    });
    expect(next.identifier).toBe(identifier);
    expect(next.lists.ipList("a.txt")).toBeUndefined();
    first.close();
    next.close();
    lists.close();
  });

  it("a build that fails at identity releases the lists it opened", async () => {
    const { lists, policy, reloads, rewrite } = setup();
    await expect(
      buildPolicySnapshot(policy(["a.txt"]), {
        lists,
        identifier: () => Promise.reject(new Error("jwks down")),
      }),
    ).rejects.toThrow("jwks down");
    expect(reloads).toEqual(["a.txt:true"]);
    await rewrite("a.txt", "203.0.113.0/24\n");
    expect(reloads).toEqual(["a.txt:true"]); // no longer watched
    lists.close();
  });

  it("shares a list file between snapshots until the last one lets go", async () => {
    const { lists, policy, reloads, rewrite } = setup();
    const old = await lists.acquire(policy(["a.txt"]));
    const next = await lists.acquire(policy(["a.txt", "b.txt"]));
    expect(reloads.sort()).toEqual(["a.txt:true", "b.txt:true"]); // a.txt read once
    old.release();
    old.release(); // idempotent: does not drop next's hold
    await rewrite("a.txt", "203.0.113.0/24\n");
    expect(next.ipList("a.txt")?.match("203.0.113.9")).toBe("203.0.113.0/24");
    next.release();
    reloads.length = 0;
    await rewrite("a.txt", "100.64.0.0/10\n");
    expect(reloads).toEqual([]);
    lists.close();
  });
});
