import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { buildCheckRequest } from "../../src/cli/check.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

// A reload that fails at any stage keeps the old policy whole, block lists
// included, and over the wire the old block list still blocks.
const dir = mkdtempSync(join(tmpdir(), "riskgate-reload-"));
const demo = readFileSync("policies/demo.yaml", "utf8");
const BLOCKED_IP = "198.51.100.9";
const CLEAN_IP = "203.0.113.7";

/** The demo policy with block lists (files under `dir`) and optional identity.jwks. */
function policyText(blockFiles: string[], jwks?: string): string {
  const lists = blockFiles.map((f) => `{ file: ${join(dir, f)}, points: 100 }`).join(", ");
  let text = demo.replace(
    /^signals:\n/m,
    `signals:\n  ip_reputation: { enabled: true, block: [${lists}] }\n`,
  );
  if (jwks !== undefined) text = text.replace(/^identity:\n/m, `identity:\n  jwks: ${jwks}\n`);
  return text;
}
const policy = (blockFiles: string[], jwks?: string) =>
  parsePolicy(policyText(blockFiles, jwks), join(dir, "policy.yaml"));

describe("hot reload is atomic", () => {
  let server: TestServer;
  let token: string;
  const check = async (ip: string) => {
    const res = await server.client.check(
      buildCheckRequest({
        method: "GET",
        path: "/v1/items",
        host: "api.example.com",
        ip,
        headers: {},
        token,
      }),
    );
    const body = res.denied_response?.body;
    return {
      code: res.status.code,
      reasons: body ? (JSON.parse(body) as { reasons: { code: string }[] }).reasons : [],
    };
  };
  const expectBlocked = async (ip: string) => {
    const r = await check(ip);
    expect(r.code).not.toBe(0);
    expect(r.reasons.map((x) => x.code)).toContain("ip.blocklisted");
  };
  const expectAllowed = async (ip: string) => expect((await check(ip)).code).toBe(0);

  beforeAll(async () => {
    writeFileSync(join(dir, "old-block.txt"), "198.51.100.0/24\n");
    writeFileSync(join(dir, "new-block.txt"), "192.0.2.0/24\n");
    writeFileSync(join(dir, "junk.txt"), "<html>\n<body>502 Bad Gateway</body>\n</html>\n");
    writeFileSync(join(dir, "empty.txt"), "");
    server = await startTestServer({ policyText: policyText(["old-block.txt"]) });
    await server.app.setPolicy(policy(["old-block.txt"]));
    token = await server.token({ sub: "u-reload", tier: "pro", amr: ["mfa"] });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("blocks with the old list before any reload", async () => {
    await expectBlocked(BLOCKED_IP);
    await expectAllowed(CLEAN_IP);
  });

  const failures: [stage: string, next: () => ReturnType<typeof policy>, code: string][] = [
    ["an unreadable new list file", () => policy(["missing.txt"]), "RISKGATE_LIST_UNREADABLE"],
    ["an invalid new list (an HTML page)", () => policy(["junk.txt"]), "RISKGATE_LIST_UNREADABLE"],
    ["an empty new list file", () => policy(["empty.txt"]), "RISKGATE_LIST_UNREADABLE"],
    [
      "a JWKS URI that fails to load (after the new lists loaded)",
      () => policy(["new-block.txt"], "{ uri: 'http://127.0.0.1:9/jwks.json', timeout_ms: 500 }"),
      "RISKGATE_JWKS_UNAVAILABLE",
    ],
    [
      "a JWKS file that cannot be read (after the new lists loaded)",
      () => policy(["new-block.txt"], `{ file: ${join(dir, "no-such-jwks.json")} }`),
      "RISKGATE_JWKS_UNAVAILABLE",
    ],
  ];
  for (const [stage, next, code] of failures) {
    it(`keeps the old policy, block list included, after ${stage}`, async () => {
      const before = server.app.current();
      await expect(server.app.setPolicy(next())).rejects.toMatchObject({ code });
      expect(server.app.current()).toBe(before);
      await expectBlocked(BLOCKED_IP);
      await expectAllowed(CLEAN_IP);
      await expectAllowed("192.0.2.5"); // the half-built snapshot's list never served
    });
  }

  it("still reloads the old list file when it changes after the failed reloads", async () => {
    writeFileSync(join(dir, "old-block.txt"), "198.51.100.0/24\n100.64.0.0/10\n");
    const deadline = Date.now() + 5000;
    while ((await check("100.64.1.1")).code === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await expectBlocked("100.64.1.1");
  });

  it("a good reload swaps lists in one step and releases the old one", async () => {
    await server.app.setPolicy(policy(["new-block.txt"]));
    await expectBlocked("192.0.2.5");
    await expectAllowed(BLOCKED_IP);
  });
});
