/**
 * `npm run chaos`: riskgate under steady, bounded load on loopback while its dependencies fail,
 * to show that it keeps answering and never lets a refused caller through. Needs only Node and
 * `redis-server`, like the bench. One server (the built CLI, Redis store, failure mode `closed`,
 * a block list) gets CHAOS_RPS Checks a second from one gRPC channel, as Envoy sends them, mixed
 * evenly from three kinds of caller:
 *   - valid: an enterprise token on GET /v1/items from a clean IP (should be allowed);
 *   - blocked: the same from an IP on the policy's block list (must never be allowed);
 *   - anonymous: no token on the same route (must never be allowed).
 * Phases: baseline; Redis SIGKILL then restart; Redis SIGSTOP then SIGCONT; a bad policy reload
 * at each stage (invalid YAML, an unreadable list file, an unreachable JWKS), each with
 * SIGHUP; SIGTERM (drain). For each phase it prints Checks sent, allows that should not be,
 * answers by outcome, transport errors and the time to recover (from the end of the fault to
 * the last refused valid Check). Exits 1 on any wrong allow or any transport error for a Check
 * the server accepted (in the SIGTERM phase, Checks sent after the drain delay, when Envoy and
 * load balancers have moved away, may be refused at the connection: counted apart).
 *   npm run chaos   (CHAOS_RPS=150, CHAOS_PHASE_MS=3000)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCheckRequest } from "../src/cli/check.js";
import { createClient, probeHealth } from "../src/cli/client.js";
import { loadOrCreateDevKeys, mintDevToken } from "../src/cli/dev-keys.js";
import { ServingStatus } from "../src/transport/health.js";
import { freePort } from "../test/helpers/free-port.js";

const RPS = Number(process.env.CHAOS_RPS ?? 150);
const PHASE_MS = Number(process.env.CHAOS_PHASE_MS ?? 3000);
const DRAIN_MS = 2000;
const BLOCKED_NET = "198.51.100";

type Kind = "valid" | "blocked" | "anonymous";
type Outcome = "allow" | "deny" | "challenge" | "throttle" | "failure-mode" | "transport-error";

interface Sent {
  readonly kind: Kind;
  readonly at: number;
  outcome?: Outcome;
  /** When the answer (or the error) came back. */
  doneAt?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), "riskgate-chaos-"));
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

// --- Redis -----------------------------------------------------------------------------------
const redisPort = await freePort();
let redis: ChildProcess | undefined;
async function startRedis(): Promise<void> {
  const r = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  children.push(r);
  redis = r;
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once("error", () => resolve(false));
      s.connect(redisPort, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
    }).catch(() => false);
    if (up) return;
    await sleep(50);
  }
  throw new Error("redis-server did not start");
}

// --- policy files ----------------------------------------------------------------------------
const policyFile = join(work, "policy.yaml");
const blockFile = join(work, "block.netset");
writeFileSync(blockFile, `${BLOCKED_NET}.0/24\n`);
const refusedPort = await freePort();
// bench/policy.yaml (limits high enough that load is not throttled) plus a block list
const goodPolicy = `${readFileSync(new URL("../../bench/policy.yaml", import.meta.url), "utf8")}
signals:
  ip_reputation: { block: [{ file: block.netset, points: 100 }] }
failure:
  mode: closed
  budget_ms: 100
`;
const badPolicies = {
  "invalid YAML": "version: 1\nidentity: [unclosed\n",
  "unreadable list file": goodPolicy.replace("file: block.netset", "file: missing.netset"),
  "unreachable JWKS": goodPolicy.replace(
    'audiences: ["demo-api"]',
    `audiences: ["demo-api"]\n  jwks: { uri: "http://127.0.0.1:${refusedPort}/jwks.json", timeout_ms: 500 }`,
  ),
};
writeFileSync(policyFile, goodPolicy);

// --- riskgate --------------------------------------------------------------------------------
await startRedis();
const grpcPort = await freePort();
const address = `127.0.0.1:${grpcPort}`;
const keysDir = join(work, "keys");
const server = spawn(process.execPath, ["dist/src/cli/main.js", "serve", "--dev"], {
  env: {
    ...process.env,
    RISKGATE_POLICY: policyFile,
    RISKGATE_DEV_KEYS_DIR: keysDir,
    RISKGATE_GRPC_ADDRESS: address,
    RISKGATE_METRICS_ADDRESS: "off",
    RISKGATE_GEO: "off",
    RISKGATE_AUDIT: "false",
    RISKGATE_LOG_LEVEL: "error",
    RISKGATE_DRAIN_DELAY_MS: String(DRAIN_MS),
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
  },
  stdio: ["ignore", "ignore", "inherit"],
});
children.push(server);
const serverExit = new Promise<number | null>((resolve) => server.on("exit", resolve));
const keys = await loadOrCreateDevKeys(keysDir);

const health = () => probeHealth(address, 300);
for (let i = 0; (await health()) !== ServingStatus.SERVING; i++) {
  if (i > 300 || server.exitCode !== null) throw new Error("riskgate did not start");
  await sleep(100);
}

// --- load ------------------------------------------------------------------------------------
const tokens = await Promise.all(
  Array.from({ length: 20 }, (_, i) =>
    mintDevToken(keys, {
      iss: "https://riskgate.dev/demo",
      aud: "demo-api",
      sub: `chaos-${i}`,
      tier: "enterprise",
      org: "chaos",
      amr: ["pwd", "mfa"],
      ttlSeconds: 3600,
    }),
  ),
);
const client = createClient(address, 1000);
let sent: Sent[] = [];
let seq = 0;
let sending = true;
/** Transport errors by gRPC code and details, for the report. */
const errorKinds = new Map<string, number>();

function send(): void {
  const kind: Kind = (["valid", "blocked", "anonymous"] as const)[seq % 3] as Kind;
  const n = seq++;
  const entry: Sent = { kind, at: Date.now() };
  sent.push(entry);
  const request = buildCheckRequest({
    method: "GET",
    path: "/v1/items",
    host: "api.example.com",
    ip: kind === "blocked" ? `${BLOCKED_NET}.${1 + (n % 250)}` : `81.2.${n % 250}.7`,
    ...(kind === "anonymous" ? {} : { token: tokens[n % tokens.length] as string }),
    headers: {},
  });
  client.check(request).then(
    (res) => {
      entry.doneAt = Date.now();
      if (res.status?.code === 0) {
        entry.outcome = "allow";
        return;
      }
      let body: { decision?: string; reasons?: { code: string }[] } = {};
      try {
        body = JSON.parse(res.denied_response?.body ?? "{}");
      } catch {
        // not JSON: counted as a plain denial
      }
      entry.outcome = body.reasons?.some((r) => r.code.startsWith("failure."))
        ? "failure-mode"
        : ((body.decision as Outcome | undefined) ?? "deny");
    },
    (err: unknown) => {
      entry.doneAt = Date.now();
      entry.outcome = "transport-error";
      const e = err as { code?: number; details?: string };
      const key = `${e.code}: ${e.details ?? String(err)}`;
      errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
    },
  );
}

const loop = (async () => {
  const started = Date.now();
  let count = 0;
  while (sending) {
    const due = Math.floor(((Date.now() - started) / 1000) * RPS);
    while (count < due && sending) {
      send();
      count++;
    }
    await sleep(5);
  }
})();

// --- phases ----------------------------------------------------------------------------------
interface PhaseRow {
  phase: string;
  sent: number;
  wrongAllows: number;
  outcomes: Record<string, number>;
  transportErrors: number;
  refusedAfterDrain: number;
  recoverMs: number;
}
const rows: PhaseRow[] = [];

async function settle(): Promise<void> {
  const deadline = Date.now() + 3000;
  while (sent.some((s) => s.outcome === undefined) && Date.now() < deadline) await sleep(20);
}

async function phase(
  name: string,
  fault: () => Promise<number | undefined>,
  opts: { stopSendingAt?: () => number } = {},
): Promise<void> {
  sent = [];
  const faultEnd = (await fault()) ?? Date.now();
  await settle();
  const batch = sent;
  const stopAt = opts.stopSendingAt?.() ?? Number.POSITIVE_INFINITY;
  const outcomes: Record<string, number> = {};
  let wrongAllows = 0;
  let transportErrors = 0;
  let refusedAfterDrain = 0;
  let lastBadValid = 0;
  for (const s of batch) {
    const o = s.outcome ?? "transport-error";
    outcomes[o] = (outcomes[o] ?? 0) + 1;
    if (o === "allow" && s.kind !== "valid") wrongAllows++;
    if (o === "transport-error") {
      if (s.at < stopAt) transportErrors++;
      else refusedAfterDrain++;
    }
    if (s.kind === "valid" && o !== "allow" && s.at < stopAt)
      lastBadValid = Math.max(lastBadValid, s.at);
  }
  rows.push({
    phase: name,
    sent: batch.length,
    wrongAllows,
    outcomes,
    transportErrors,
    refusedAfterDrain,
    recoverMs: Math.max(0, lastBadValid - faultEnd),
  });
}

const signalServer = (s: NodeJS.Signals) => server.kill(s);
async function badReload(text: string): Promise<number> {
  await sleep(PHASE_MS / 3);
  writeFileSync(policyFile, text);
  signalServer("SIGHUP");
  await sleep(PHASE_MS);
  writeFileSync(policyFile, goodPolicy);
  signalServer("SIGHUP");
  const end = Date.now();
  await sleep(PHASE_MS / 2);
  return end;
}

// the first Checks verify the callers' tokens and warm the JIT: shown, not judged
await phase("warm-up (not judged)", async () => {
  await sleep(1500);
  return undefined;
});
const warmUp = rows.pop();
await phase("baseline", async () => {
  await sleep(PHASE_MS);
  return undefined;
});
await phase("Redis SIGKILL, restart", async () => {
  await sleep(PHASE_MS / 3);
  redis?.kill("SIGKILL");
  await sleep(PHASE_MS);
  await startRedis();
  const end = Date.now();
  await sleep(PHASE_MS);
  return end;
});
await phase("Redis SIGSTOP, SIGCONT", async () => {
  await sleep(PHASE_MS / 3);
  redis?.kill("SIGSTOP");
  await sleep(PHASE_MS);
  redis?.kill("SIGCONT");
  const end = Date.now();
  await sleep(PHASE_MS);
  return end;
});
for (const [name, text] of Object.entries(badPolicies)) {
  await phase(`bad reload: ${name}`, () => badReload(text));
}
let drainStop = 0;
let sawNotServing = false;
await phase(
  "SIGTERM (drain)",
  async () => {
    await sleep(PHASE_MS / 3);
    const termAt = Date.now();
    signalServer("SIGTERM");
    drainStop = termAt + DRAIN_MS - 300;
    // Envoy and load balancers see NOT_SERVING and move away before the drain delay ends
    while (Date.now() < drainStop) {
      if ((await health()) === ServingStatus.NOT_SERVING) sawNotServing = true;
      await sleep(50);
    }
    sending = false;
    await serverExit;
    return termAt;
  },
  { stopSendingAt: () => drainStop },
);
await loop;
client.close();
const exitCode = await serverExit;

// --- report ----------------------------------------------------------------------------------
const kinds: Outcome[] = [
  "allow",
  "deny",
  "challenge",
  "throttle",
  "failure-mode",
  "transport-error",
];
const lines = [
  `riskgate chaos: ${RPS} Check/s (valid, blocked-IP and token-less callers in turn), one gRPC channel, Redis store, failure mode closed, phases of ${PHASE_MS} ms`,
  "",
  "| phase | Checks sent | wrong allows | allow | deny | challenge | throttle | failure-mode | transport errors | refused after drain | time to recover |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ...[...(warmUp ? [warmUp] : []), ...rows].map(
    (r) =>
      `| ${r.phase} | ${r.sent} | ${r.wrongAllows} | ${kinds
        .filter((k) => k !== "transport-error")
        .map((k) => r.outcomes[k] ?? 0)
        .join(" | ")} | ${r.transportErrors} | ${r.refusedAfterDrain} | ${r.recoverMs} ms |`,
  ),
  "",
  `SIGTERM: health NOT_SERVING seen during the drain: ${sawNotServing}; server exit code ${exitCode}.`,
  ...[...errorKinds].map(([k, n]) => `transport error ${k}: ${n}`),
];
const wrong = rows.reduce((a, r) => a + r.wrongAllows, 0);
const lost = rows.reduce((a, r) => a + r.transportErrors, 0);
const ok = wrong === 0 && lost === 0 && exitCode === 0 && sawNotServing;
lines.push(
  ok
    ? "PASS: no wrong allow, no transport error for an accepted Check."
    : `FAIL: ${wrong} wrong allows, ${lost} transport errors for accepted Checks, exit ${exitCode}, NOT_SERVING seen ${sawNotServing}.`,
);
process.stdout.write(`${lines.join("\n")}\n`);
redis?.kill("SIGKILL");
rmSync(work, { recursive: true, force: true });
process.exitCode = ok ? 0 : 1;
