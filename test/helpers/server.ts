import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parsePolicy } from "../../src/access/policy.js";
import { type App, createApp } from "../../src/app.js";
import { createClient, type RiskgateClient } from "../../src/cli/client.js";
import { createDevKeySource, loadOrCreateDevKeys } from "../../src/cli/dev-keys.js";
import { loadSettings, type Settings } from "../../src/config/settings.js";
import type { GeoReader } from "../../src/geo/geo-reader.js";
import type { Store } from "../../src/state/store.js";
import { createLogger } from "../../src/telemetry/logger.js";
import type { Telemetry } from "../../src/telemetry/telemetry.js";

export interface TestServer {
  readonly app: App;
  readonly client: RiskgateClient;
  readonly port: number;
  readonly logs: Record<string, unknown>[];
  /** Mints a dev token the server trusts (demo issuer and audience unless overridden). */
  token(
    claims: Record<string, unknown> & { sub: string; ttlSeconds?: number; nowMs?: number },
  ): Promise<string>;
  readonly devKeys: Awaited<ReturnType<typeof loadOrCreateDevKeys>>;
  stop(): Promise<void>;
}

/** Starts the real server on 127.0.0.1:0 with the demo policy (or `policyText`) and dev keys. */
export async function startTestServer(
  options: {
    policyText?: string;
    store?: Store;
    clock?: () => number;
    geo?: GeoReader;
    telemetry?: Telemetry;
    /** Settings besides the listen addresses and dev mode (the defaults otherwise). */
    settings?: Partial<Settings>;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "riskgate-test-"));
  const devKeys = await loadOrCreateDevKeys(join(dir, "keys"));
  const text = options.policyText ?? readFileSync("policies/demo.yaml", "utf8");
  const policy = parsePolicy(text, "test-policy.yaml");
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const app = createApp({
    settings: loadSettings(
      {},
      { grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0", dev: true, ...options.settings },
    ),
    logger: createLogger("info", sink),
    devKeys: createDevKeySource(devKeys.publicJwks),
    ...(options.store ? { store: options.store } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.geo ? { geo: options.geo } : {}),
    ...(options.telemetry ? { telemetry: options.telemetry } : {}),
  });
  const port = await app.start(policy);
  const client = createClient(`127.0.0.1:${port}`);
  const { mintDevToken } = await import("../../src/cli/dev-keys.js");
  return {
    app,
    client,
    port,
    logs,
    devKeys,
    token: ({ sub, ttlSeconds, nowMs, tier, org, entitlements, amr, acr, iss, aud, ...extra }) =>
      mintDevToken(devKeys, {
        iss: (iss as string) ?? policy.doc.identity.issuers[0],
        aud: (aud as string) ?? policy.doc.identity.audiences[0],
        sub,
        ttlSeconds: ttlSeconds ?? 600,
        ...(typeof nowMs === "number" ? { nowMs } : {}),
        ...(tier === undefined ? {} : { tier: tier as string }),
        ...(org === undefined ? {} : { org: org as string }),
        ...(entitlements === undefined ? {} : { entitlements: entitlements as string[] }),
        ...(amr === undefined ? {} : { amr: amr as string[] }),
        ...(acr === undefined ? {} : { acr: acr as string }),
        extra,
      }),
    async stop() {
      client.close();
      await app.shutdown(2000);
    },
  };
}
