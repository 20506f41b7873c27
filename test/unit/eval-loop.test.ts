import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { type EngineVerdict, type EvalEngine, openEngine } from "../../bench/eval/engine.js";
import { createMinter } from "../../bench/eval/generate.js";
import { runClosedLoop } from "../../bench/eval/loop.js";
import type { SimRequest } from "../../bench/eval/model.js";
import { createRng } from "../../bench/eval/rng.js";
import type { DecisionRecord } from "../../bench/eval/score.js";
import { simulate } from "../../bench/eval/traffic.js";

const START = Date.UTC(2026, 10, 9);
const T0 = START + 10 * 3_600_000;
const ISS = "https://riskgate.dev/demo";
const AUD = "demo-api";

/** What the fake engine saw of one request. */
interface Seen {
  readonly id: string;
  readonly time: number;
  readonly path: string;
  readonly claims: Record<string, unknown>;
}

/** A stand-in for the pipeline (our own port): answers each request with `verdict`. */
function fakeEngine(
  verdict: (s: Seen, n: number) => Partial<EngineVerdict> & { kind?: DecisionRecord["decision"] },
): {
  engine: EvalEngine;
  seen: Seen[];
} {
  const seen: Seen[] = [];
  return {
    seen,
    engine: {
      async decide(json) {
        const check = JSON.parse(json) as {
          attributes: {
            request: {
              time: string;
              http: { id: string; path: string; headers: Record<string, string> };
            };
          };
        };
        const http = check.attributes.request.http;
        const s: Seen = {
          id: http.id,
          time: Date.parse(check.attributes.request.time),
          path: http.path,
          claims: decodeJwt((http.headers.authorization ?? "").slice(7)) as Record<string, unknown>,
        };
        seen.push(s);
        const v = verdict(s, seen.length);
        const record: DecisionRecord = {
          request_id: s.id,
          time: check.attributes.request.time,
          decision: v.kind ?? "allow",
          ...(v.kind === "challenge" ? { challenge_style: "step_up" as const } : {}),
          score: 0,
          reasons: [],
          route: "api-read",
        };
        return {
          record,
          ...(v.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: v.retryAfterSeconds }),
        };
      },
      async close() {},
    },
  };
}

const sec = (ms: number) => Math.floor(ms / 1000);

function req(over: Partial<SimRequest> & Pick<SimRequest, "t" | "actor" | "path">): SimRequest {
  const login = T0 - 3_600_000;
  return {
    label: "legit",
    group: "browser",
    ip: "77.13.90.177",
    port: 40000,
    method: "GET",
    userAgent: "Mozilla/5.0",
    token: {
      sub: over.actor,
      org: "acme",
      tier: "enterprise",
      iat: sec(T0 - 600_000),
      exp: sec(T0 + 3_000_000),
      amr: ["pwd"],
      authTime: sec(login),
    },
    ...over,
  };
}

async function run(plan: SimRequest[], engine: EvalEngine) {
  const minter = await createMinter("loop-test", ISS, AUD);
  const rng = createRng("loop-test");
  return runClosedLoop(plan, engine, minter, { react: true, rngFor: (a) => rng.fork(a) });
}

describe("the closed loop", () => {
  it("a person answers a challenge by logging in again with MFA and retries; the session keeps the new login", async () => {
    const plan = [
      req({ t: T0, actor: "alice", path: "/admin/users" }),
      req({ t: T0 + 600_000, actor: "alice", path: "/v1/projects" }),
    ];
    const { engine, seen } = fakeEngine((_, n) => (n === 1 ? { kind: "challenge" } : {}));
    const out = await run(plan, engine);
    expect(seen.map((s) => s.path)).toEqual(["/admin/users", "/admin/users", "/v1/projects"]);
    const [first, retry, later] = seen as [Seen, Seen, Seen];
    expect(retry.time).toBeGreaterThan(first.time);
    expect(retry.claims.auth_time as number).toBeGreaterThanOrEqual(sec(first.time));
    expect(retry.claims.auth_time as number).toBeLessThanOrEqual(sec(retry.time));
    expect(retry.claims.amr).toEqual(["pwd", "mfa"]);
    expect(later.claims.auth_time).toBe(retry.claims.auth_time);
    expect(later.claims.amr).toEqual(["pwd", "mfa"]);
    expect(out.stepUps).toBe(1);
    expect(out.labels.map((l) => l.request_id)).toEqual(seen.map((s) => s.id));
  });

  it("an attacker cannot answer a challenge: no retry, no new login", async () => {
    const plan = [
      req({ t: T0, actor: "thief", label: "attack", group: "stolen-token-abroad", path: "/v1/a" }),
      req({
        t: T0 + 30_000,
        actor: "thief",
        label: "attack",
        group: "stolen-token-abroad",
        path: "/v1/b",
      }),
    ];
    const { engine, seen } = fakeEngine(() => ({ kind: "challenge" }));
    const out = await run(plan, engine);
    expect(seen.map((s) => s.path)).toEqual(["/v1/a", "/v1/b"]);
    expect(seen[1]?.claims.auth_time).toBe(seen[0]?.claims.auth_time);
    expect(out.stepUps).toBe(0);
  });

  it("a machine waits out Retry-After and sends the same call again", async () => {
    const token = {
      sub: "client-x",
      org: "acme",
      tier: "enterprise",
      iat: sec(T0),
      exp: sec(T0) + 300,
      clientId: "client-x",
      idp: "okta" as const,
    };
    const plan = [
      req({
        t: T0,
        actor: "client-x",
        group: "sdk-client",
        path: "/v1/events",
        token,
        reaction: "machine",
      }),
    ];
    const { engine, seen } = fakeEngine((_, n) =>
      n === 1 ? { kind: "throttle", retryAfterSeconds: 30 } : {},
    );
    await run(plan, engine);
    expect(seen.map((s) => s.path)).toEqual(["/v1/events", "/v1/events"]);
    expect((seen[1]?.time ?? 0) - (seen[0]?.time ?? 0)).toBeGreaterThanOrEqual(30_000);
    expect(seen[1]?.claims.cid).toBeDefined();
  });

  it("a job refused aborts its run, and runs again the next night", async () => {
    const token = {
      sub: "job",
      org: "acme",
      tier: "enterprise",
      iat: sec(T0),
      exp: sec(T0) + 86_400 * 3,
      clientId: "job",
      idp: "auth0" as const,
    };
    const job = (t: number, page: number, run: string) =>
      req({
        t,
        actor: "job",
        group: "batch",
        path: `/v1/tasks?page=${page}`,
        token,
        reaction: "machine-job",
        run,
      });
    const plan = [
      job(T0, 1, "n0"),
      job(T0 + 200, 2, "n0"),
      job(T0 + 400, 3, "n0"),
      job(T0 + 86_400_000, 1, "n1"),
    ];
    const { engine, seen } = fakeEngine((s) => (s.path.endsWith("page=2") ? { kind: "deny" } : {}));
    const out = await run(plan, engine);
    expect(seen.map((s) => s.path)).toEqual([
      "/v1/tasks?page=1",
      "/v1/tasks?page=2",
      "/v1/tasks?page=1",
    ]);
    expect(out.droppedByGroup.get("batch")).toBe(1);
  });

  it("a stuffing tool drops an account once it is refused and goes on with the next", async () => {
    const acct = (t: number, who: string, path: string) =>
      req({
        t,
        actor: "stuffer",
        label: "attack",
        group: "stuffing-one-ip",
        path,
        reaction: "stuffing",
        run: `stuffer:${who}`,
      });
    const plan = [
      acct(T0, "a", "/v1/me"),
      acct(T0 + 500, "a", "/v1/projects"),
      acct(T0 + 9000, "b", "/v1/me"),
    ];
    const { engine, seen } = fakeEngine((_, n) => (n === 1 ? { kind: "challenge" } : {}));
    await run(plan, engine);
    expect(seen.map((s) => s.path)).toEqual(["/v1/me", "/v1/me"]);
  });

  it("gives the same decisions twice for one seed, through the real pipeline", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rg-loop-"));
    try {
      const plan = simulate(createRng("loop-det"), { start: START, days: 1, scale: 0.2 }).filter(
        (_, i) => i % 20 === 0,
      );
      const once = async () => {
        const minter = await createMinter("loop-det", ISS, AUD);
        const jwks = join(dir, "jwks.json");
        await writeFile(jwks, JSON.stringify(minter.jwks));
        const engine = await openEngine("policies/demo.yaml", jwks);
        const rng = createRng("loop-det:loop");
        try {
          return await runClosedLoop(plan, engine, minter, {
            react: true,
            rngFor: (a) => rng.fork(a),
          });
        } finally {
          await engine.close();
        }
      };
      const a = await once();
      const b = await once();
      expect(a.decisions.length).toBeGreaterThan(300);
      expect(b.decisions).toEqual(a.decisions);
      expect(b.labels).toEqual(a.labels);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
