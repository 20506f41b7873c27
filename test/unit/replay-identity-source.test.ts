import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/access/policy.js";
import { createAuditReader } from "../../src/replay/audit-input.js";

/** Replay decides an API-key or mesh caller's line from the recorded caller, as that source. */
describe("replaying an audit line names its identity source", () => {
  const read = createAuditReader(
    parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml"),
  );
  const line = (identity_source?: string) => ({
    received_at: "2026-12-08T00:00:00.000Z",
    method: "GET",
    host: "api.example.com",
    path: "/v1/items",
    route: "api-read",
    subject: "acme-sync",
    org: "acme",
    caller: { tier: "pro", entitlements: [], amr: [] },
    ...(identity_source === undefined ? {} : { identity_source }),
  });

  it("api_key and mtls callers replay as machines of that source; jwt and older lines as bearer", async () => {
    const outcome = async (source?: string) =>
      read(line(source)).identifier.identify(read(line(source)).req, 0);
    expect(await outcome("api_key")).toMatchObject({
      kind: "verified",
      source: "api_key",
      clientClass: "machine",
      caller: { subject: "acme-sync", tier: "pro" },
    });
    expect(await outcome("mtls")).toMatchObject({ source: "mtls", clientClass: "machine" });
    expect(await outcome("introspection")).toMatchObject({ source: "introspection" });
    const jwt = await outcome("jwt");
    expect(jwt).toMatchObject({ source: "bearer" });
    expect(jwt).not.toHaveProperty("clientClass");
    expect(await outcome()).toMatchObject({ source: "bearer" });
  });
});
