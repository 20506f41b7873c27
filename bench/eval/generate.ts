import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { machineClaims } from "./idp.js";
import type { LabelRecord, SimRequest, TokenSpec } from "./model.js";
import { tokenKey } from "./model.js";
import { createRng } from "./rng.js";
import { deriveEvalKeys, mintToken } from "./tokens.js";
import { simulate, type TrafficOptions } from "./traffic.js";

export const API_HOST = "api.example.com";

export interface GenerateOptions {
  readonly seed: string;
  readonly days?: number;
  readonly scale?: number;
  /** Monday 00:00 UTC; default 2026-11-09. */
  readonly start?: number;
  /** Token `iss` and `aud`, as the policy under test expects them. */
  readonly issuer: string;
  readonly audience: string;
}

/** The default simulated week. */
export const DEFAULT_START = Date.UTC(2026, 10, 9);

/** A CheckRequest in proto3 canonical JSON (camelCase), as Envoy's ext_authz filter sends it. */
export function toCheckRequest(r: SimRequest, id: string, jwt: string): unknown {
  const headers: Record<string, string> = {
    ":authority": API_HOST,
    ":method": r.method,
    ":path": r.path,
    ":scheme": "https",
    accept: "application/json",
    authorization: `Bearer ${jwt}`,
    "user-agent": r.userAgent,
    "x-forwarded-for": r.ip,
    "x-forwarded-proto": "https",
    "x-request-id": id,
  };
  if (r.deviceId) headers["x-device-id"] = r.deviceId;
  if (r.bodyBytes !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(r.bodyBytes);
  }
  const query = r.path.includes("?") ? r.path.slice(r.path.indexOf("?") + 1) : undefined;
  return {
    attributes: {
      source: { address: { socketAddress: { address: r.ip, portValue: r.port } } },
      destination: { address: { socketAddress: { address: "10.0.0.10", portValue: 443 } } },
      request: {
        time: new Date(r.t).toISOString(),
        http: {
          id,
          method: r.method,
          headers,
          path: r.path,
          host: API_HOST,
          scheme: "https",
          protocol: "HTTP/2",
          ...(query ? { query } : {}),
          ...(r.bodyBytes !== undefined ? { size: String(r.bodyBytes) } : {}),
        },
      },
    },
  };
}

export interface Generated {
  readonly requests: readonly SimRequest[];
  readonly ids: readonly string[];
  readonly jwks: unknown;
  /** One JWT per distinct token. */
  readonly tokens: ReadonlyMap<string, string>;
}

/**
 * The claims of a token besides iss, aud, iat and exp: a machine token in its IdP's shape, a
 * person's session as an OIDC provider issues it for RFC 9470 step-up (`amr`, `auth_time`).
 */
export function claimsOf(t: TokenSpec): Record<string, unknown> {
  if (t.idp !== undefined && t.clientId !== undefined) {
    return { ...machineClaims(t.idp, t.clientId, t.iat), org: t.org, tier: t.tier };
  }
  return {
    sub: t.sub,
    org: t.org,
    tier: t.tier,
    jti: `${t.sub}.${t.iat}`,
    ...(t.amr ? { amr: t.amr } : {}),
    ...(t.authTime !== undefined ? { auth_time: t.authTime } : {}),
  };
}

/** Mints (and remembers) the JWT of each distinct token. */
export interface TokenMinter {
  jwtOf(t: TokenSpec): Promise<string>;
  readonly jwks: unknown;
  readonly tokens: ReadonlyMap<string, string>;
}

export async function createMinter(
  seed: string,
  issuer: string,
  audience: string,
): Promise<TokenMinter> {
  const keys = await deriveEvalKeys(seed);
  const tokens = new Map<string, string>();
  return {
    jwks: keys.publicJwks,
    tokens,
    async jwtOf(t) {
      const k = tokenKey(t);
      let jwt = tokens.get(k);
      if (jwt === undefined) {
        jwt = await mintToken(keys, issuer, audience, t.iat, t.exp, claimsOf(t));
        tokens.set(k, jwt);
      }
      return jwt;
    },
  };
}

/** The traffic options of a run. */
export function trafficOf(opts: GenerateOptions): TrafficOptions {
  return { start: opts.start ?? DEFAULT_START, days: opts.days ?? 7, scale: opts.scale ?? 1 };
}

/** Simulates the week as planned (no reactions) and mints every token; nothing is written. */
export async function generate(opts: GenerateOptions): Promise<Generated> {
  const requests = simulate(createRng(opts.seed), trafficOf(opts));
  const minter = await createMinter(opts.seed, opts.issuer, opts.audience);
  for (const r of requests) await minter.jwtOf(r.token);
  const width = String(requests.length).length;
  const ids = requests.map((_, i) => `eval-${String(i + 1).padStart(width, "0")}`);
  return { requests, ids, jwks: minter.jwks, tokens: minter.tokens };
}

/** Writes requests.jsonl, labels.jsonl and jwks.json into `dir`. */
export async function writeGenerated(
  g: Generated,
  dir: string,
): Promise<{ requests: string; labels: string; jwks: string }> {
  await mkdir(dir, { recursive: true });
  const files = {
    requests: join(dir, "requests.jsonl"),
    labels: join(dir, "labels.jsonl"),
    jwks: join(dir, "jwks.json"),
  };
  await writeFile(files.jwks, `${JSON.stringify(g.jwks, null, 2)}\n`);
  const req = createWriteStream(files.requests);
  const lab = createWriteStream(files.labels);
  for (let i = 0; i < g.requests.length; i++) {
    const r = g.requests[i] as SimRequest;
    const id = g.ids[i] as string;
    const check = toCheckRequest(r, id, g.tokens.get(tokenKey(r.token)) as string);
    const label: LabelRecord = { request_id: id, label: r.label, group: r.group, actor: r.actor };
    if (!req.write(`${JSON.stringify(check)}\n`)) await once(req, "drain");
    if (!lab.write(`${JSON.stringify(label)}\n`)) await once(lab, "drain");
  }
  req.end();
  lab.end();
  await Promise.all([once(req, "finish"), once(lab, "finish")]);
  return files;
}
