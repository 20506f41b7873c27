/**
 * What identifying one Check costs per identity source, in process (a plain script):
 *
 *   npm run build && node dist/bench/identity.bench.js [checks]
 *
 * Each source identifies the same caller again and again, as a steady client does: a JWT from
 * the verified-token cache (the common case; a first verification costs a signature check),
 * Envoy's jwt_authn payload, an mTLS principal (prefix match), an API key (SHA-256 and a
 * constant-time compare every time, by design), an opaque token from the introspection cache.
 * The best of ROUNDS rounds is reported (the machine's noise only ever adds time).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { API_KEY_FORMAT } from "../src/access/api-keys/key-file.js";
import { newApiKey } from "../src/access/api-keys/new-key.js";
import { createIdentifier, type Identifier } from "../src/access/identity.js";
import { createStaticKeySource } from "../src/access/key-source.js";
import { policySchema } from "../src/access/policy.js";
import type { AccessRequest } from "../src/access/request.js";
import { parseListText } from "../src/geo/list-file-watcher.js";

const CHECKS = Number(process.argv[2] ?? 50_000);
const ROUNDS = 5;

const request = (over: Partial<AccessRequest>): AccessRequest => ({
  id: "b",
  method: "GET",
  host: "api.example.com",
  path: "/v1/items",
  query: "",
  headers: new Map(),
  clientIp: "10.1.2.3",
  size: -1,
  principal: "",
  sni: "",
  contextExtensions: {},
  metadata: {},
  receivedAt: Date.now(),
  ...over,
});

async function best(id: Identifier, req: AccessRequest): Promise<number> {
  const first = await id.identify(req, Date.now());
  if (first.kind !== "verified") throw new Error(`not verified: ${JSON.stringify(first)}`);
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const now = Date.now();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CHECKS; i++) await id.identify(req, now);
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / CHECKS);
  }
  return min;
}

async function main(): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  const keys = createStaticKeySource({ keys: [jwk] }, "bench");
  const claims = { sub: "alice", tier: "pro", org: "acme" };
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer("https://issuer.bench")
    .setAudience("api")
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey);
  const key = newApiKey({ subject: "acme-sync", tier: "pro", networks: ["10.0.0.0/8"] });
  const table = parseListText(API_KEY_FORMAT, `${key.line}\n`, "bench").list;
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ active: true, ...claims, exp: Math.floor(Date.now() / 1000) + 600 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const identity = policySchema.parse({
    version: 1,
    identity: {
      issuers: ["https://issuer.bench"],
      audiences: ["api"],
      sources: { jwt_authn: { enabled: true } },
      mtls: { peers: [{ principal: "spiffe://cluster.local/ns/billing/sa/*", tier: "pro" }] },
      api_keys: { file: "bench" },
      introspection: {
        endpoint: `http://127.0.0.1:${port}/introspect`,
        client_id: "rg",
        client_secret_file: "x",
      },
    },
    tiers: { pro: {} },
  }).identity;
  const id = createIdentifier(
    { keys, apiKeys: { current: () => table }, introspection: { clientSecret: "s" } },
    identity,
  );
  const rows: [string, AccessRequest][] = [
    ["jwt (cached)", request({ headers: new Map([["authorization", `Bearer ${jwt}`]]) })],
    [
      "jwt_authn",
      request({ metadata: { "envoy.filters.http.jwt_authn": { jwt_payload: claims } } }),
    ],
    ["mtls", request({ principal: "spiffe://cluster.local/ns/billing/sa/invoicer" })],
    ["api_key", request({ headers: new Map([["x-api-key", key.key]]) })],
    [
      "introspection (cached)",
      request({ headers: new Map([["authorization", "Bearer opaque-1"]]) }),
    ],
  ];
  process.stdout.write(`identify() per Check, best of ${ROUNDS} rounds of ${CHECKS}\n`);
  for (const [name, req] of rows) {
    const ns = await best(id, req);
    process.stdout.write(`${name.padEnd(24)} ${(ns / 1000).toFixed(2)} us\n`);
  }
  server.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
