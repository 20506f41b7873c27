import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { API_KEY_FORMAT } from "../../src/access/api-keys/key-file.js";
import { type ApiKeyFiles, createApiKeyFiles } from "../../src/access/api-keys/key-files.js";
import { newApiKey } from "../../src/access/api-keys/new-key.js";
import { createIdentifier } from "../../src/access/identity.js";
import type { ResolvedRoute } from "../../src/access/routes.js";
import { parseListText } from "../../src/geo/list-file-watcher.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { accessRequest as baseRequest } from "../helpers/access-request.js";
import { identityPolicy, NOW } from "../helpers/jwt.js";

const good = newApiKey({ subject: "svc-a", tier: "pro", org: "acme", entitlements: ["x"] });
const revoked = newApiKey({ subject: "svc-r", tier: "pro" });
const expired = newApiKey({ subject: "svc-e", tier: "pro", expires: "2026-01-01T00:00:00Z" });
const office = newApiKey({ subject: "svc-n", tier: "pro", networks: ["10.0.0.0/8"] });
const revokedLine = JSON.stringify({ ...JSON.parse(revoked.line), revoked: true });
const FILE = [good.line, revokedLine, expired.line, office.line, "# a comment", ""].join("\n");

const table = parseListText(API_KEY_FORMAT, FILE, "keys.jsonl").list;
const identifier = (extra: Record<string, unknown> = {}) =>
  createIdentifier(
    { keys: undefined, apiKeys: { current: () => table } },
    identityPolicy({ api_keys: { file: "keys.jsonl", ...extra } }),
  );
const request = (headers: Record<string, string>, clientIp = "203.0.113.7") =>
  baseRequest({ headers: new Map(Object.entries(headers)), clientIp });
const route = (api_key: string[]) =>
  ({
    name: "r",
    auth: "required",
    sensitivity: "low",
    rule: { api_key },
  }) as unknown as ResolvedRoute;

describe("API keys as callers", () => {
  it("a listed key is its entry's caller, a machine, from x-api-key or Authorization: ApiKey", async () => {
    const id = identifier();
    const places: Record<string, string>[] = [
      { "x-api-key": good.key },
      { authorization: `ApiKey ${good.key}` },
    ];
    for (const headers of places) {
      expect(await id.identify(request(headers), NOW)).toMatchObject({
        kind: "verified",
        source: "api_key",
        clientClass: "machine",
        caller: { subject: "svc-a", org: "acme", tier: "pro", entitlements: ["x"] },
      });
    }
  });

  it("refuses unknown, revoked, expired and out-of-network keys with their reason codes", async () => {
    const id = identifier();
    const cases: [string, string, string?][] = [
      [`rg_${"A".repeat(43)}`, "identity.unknown_key"],
      [revoked.key, "identity.revoked_key"],
      [expired.key, "identity.expired_key"],
      [office.key, "identity.key_network", "203.0.113.7"],
    ];
    for (const [key, reason, ip] of cases) {
      const out = await id.identify(request({ "x-api-key": key }, ip), NOW);
      expect(out).toMatchObject({ kind: "invalid", reason, method: "api_key" });
      // the refusal names the key's public label at most, never the key
      expect(JSON.stringify(out)).not.toContain(key.slice(9));
    }
    expect(await id.identify(request({ "x-api-key": office.key }, "10.1.2.3"), NOW)).toMatchObject({
      kind: "verified",
      caller: { subject: "svc-n" },
    });
  });

  it("reads keys only where the route says; a Bearer JWT stays the JWT source's", async () => {
    const id = identifier({ from: ["header"] });
    expect(await id.identify(request({ authorization: `ApiKey ${good.key}` }), NOW)).toMatchObject({
      kind: "invalid",
      reason: "identity.malformed",
    });
    const bearer = request({ authorization: `Bearer ${good.key}` });
    expect(await id.identify(bearer, NOW, route(["bearer"]))).toMatchObject({
      source: "api_key",
    });
    expect(
      await id.identify(request({ authorization: "Bearer a.b.c" }), NOW, route(["bearer"])),
      // the JWT source answered (this identifier has no JWKS)
    ).toMatchObject({ kind: "invalid", reason: "identity.keys_unavailable" });
    expect(await id.identify(request({ "x-api-key": good.key }), NOW, route([]))).toEqual({
      kind: "anonymous",
    });
  });

  it("the key line holds the key's SHA-256, never the key", () => {
    expect(good.line).not.toContain(good.key);
    expect(good.key).toMatch(/^rg_[A-Za-z0-9_-]{43}$/);
    expect(JSON.parse(good.line)).toMatchObject({ id: good.key.slice(0, 9), subject: "svc-a" });
  });
});

describe("the API key file", () => {
  let files: ApiKeyFiles | undefined;
  afterEach(() => files?.close());

  it("skips bad lines, and a rename-over swaps the keys whole", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rg-keys-"));
    const path = join(dir, "keys.jsonl");
    writeFileSync(
      path,
      `${good.line}\nnot json\n{"sha256":"zz","subject":"s","tier":"t"}\n${office.line}\n`,
    );
    files = createApiKeyFiles({ logger: createLogger("silent") });
    const keys = await files.open(path);
    expect(keys.current().size).toBe(2);
    writeFileSync(join(dir, "next"), `${revoked.line}\n`);
    renameSync(join(dir, "next"), path);
    await expect.poll(() => keys.current().size).toBe(1);
    const { createHash } = await import("node:crypto");
    const hex = createHash("sha256").update(revoked.key).digest("hex");
    expect(keys.current().find(hex)?.subject).toBe("svc-r");
  });

  it("refuses a file that never loads", async () => {
    files = createApiKeyFiles({ logger: createLogger("silent") });
    await expect(files.open("/nonexistent/keys.jsonl")).rejects.toMatchObject({
      code: "RISKGATE_LIST_UNREADABLE",
    });
  });
});
