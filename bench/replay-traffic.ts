import type { DevKeys } from "../src/cli/dev-keys.js";
import { mintDevToken } from "../src/cli/dev-keys.js";

/** What a generated replay input looks like. */
export interface TrafficOptions {
  readonly keys: Pick<DevKeys, "privateKey" | "kid">;
  readonly iss: string;
  readonly aud: string;
  /** Lines to write. */
  readonly lines: number;
  /** Simulated start (ms since epoch). */
  readonly start: number;
  /** Mean gap between requests (ms). */
  readonly gapMs: number;
  readonly users?: number;
  readonly seed?: number;
  /** Write original (.proto) field names instead of lowerCamelCase JSON names. */
  readonly protoNames?: boolean;
}

/** A small seeded PRNG (mulberry32): the same seed, the same traffic. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Client addresses in a few countries (public ranges of ISPs the geo database places). */
const ADDRESSES = [
  "81.2.69.142",
  "89.160.20.112",
  "2.125.160.216",
  "67.43.156.1",
  "175.16.199.1",
  "216.160.83.56",
  "202.196.224.1",
  "149.101.100.1",
];
const PATHS: readonly [string, string][] = [
  ["GET", "/v1/items"],
  ["GET", "/v1/items/42"],
  ["POST", "/v1/items"],
  ["GET", "/v1/reports/q3/export"],
  ["GET", "/billing/invoices"],
  ["GET", "/admin/users"],
  ["GET", "/healthz"],
];
const TIERS = ["free", "pro", "enterprise"];
const AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "acme-sdk/2.1", "curl/8.5.0"];

/**
 * Seeded mixed traffic as replay input: Envoy CheckRequests in proto3 JSON, one a line, in time
 * order. Users of three tiers with home addresses and devices, tokens minted by the dev key and
 * renewed hourly around the simulated time, occasional trips to another address, bursts, and
 * some automation agents: enough to exercise every stateful signal. Not a labelled evaluation.
 */
export async function* generateTraffic(options: TrafficOptions): AsyncGenerator<string> {
  const random = seeded(options.seed ?? 1);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const users = Array.from({ length: options.users ?? 200 }, (_, i) => ({
    sub: `user-${i}`,
    org: `org-${i % 17}`,
    tier: TIERS[i % 3] as string,
    home: pick(ADDRESSES),
    device: `dev-${i}`,
    agent: pick(AGENTS),
    token: "",
    renewAt: 0,
  }));
  const camel = !options.protoNames;
  let now = options.start;
  for (let n = 0; n < options.lines; n++) {
    now += Math.round(random() * 2 * options.gapMs);
    const u = pick(users);
    if (now >= u.renewAt) {
      u.token = await mintDevToken(options.keys, {
        iss: options.iss,
        aud: options.aud,
        sub: u.sub,
        org: u.org,
        tier: u.tier,
        amr: random() < 0.5 ? ["pwd", "mfa"] : ["pwd"],
        ttlSeconds: 3600,
        nowMs: now,
      });
      u.renewAt = now + 50 * 60_000;
    }
    const [method, path] = pick(PATHS);
    const ip = random() < 0.03 ? pick(ADDRESSES) : u.home;
    const id = `req-${n}`;
    const headers: Record<string, string> = {
      ":authority": "api.example.com",
      ":method": method,
      ":path": path,
      "user-agent": u.agent,
      "x-device-id": random() < 0.02 ? `dev-new-${n}` : u.device,
      "x-request-id": id,
    };
    if (random() > 0.01) headers.authorization = `Bearer ${u.token}`;
    const http = {
      id,
      method,
      path,
      host: "api.example.com",
      headers,
      protocol: "HTTP/2",
      ...(method === "POST" ? { size: String(Math.floor(random() * 4096)) } : {}),
    };
    const address = camel
      ? { socketAddress: { address: ip, portValue: 40000 + (n % 1000) } }
      : { socket_address: { address: ip, port_value: 40000 + (n % 1000) } };
    yield JSON.stringify({
      attributes: {
        source: { address },
        request: { time: new Date(now).toISOString(), http },
      },
    });
  }
}
