import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PNG } from "pngjs";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { generateTraffic } from "../../bench/replay-traffic.js";
import { loadOrCreateDevKeys } from "../../src/cli/dev-keys.js";
import { writeMmdb } from "../fixtures/geo/mmdb-writer.js";

/**
 * The built `riskgate replay` and `riskgate explain` commands, as an operator runs them: files in,
 * JSONL and reports out, exit codes that gate a policy change in CI. Needs `npm run build`.
 */
// each test spawns the CLI, and what-if decides 2,000 requests twice: slow on a busy machine
vi.setConfig({ testTimeout: 90_000 });

const CLI = "dist/src/cli/main.js";
const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), "riskgate-replay-cli-"));
const env = { ...process.env, RISKGATE_DEV_KEYS_DIR: join(work, "keys") };
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const demo = readFileSync("policies/demo.yaml", "utf8");
const input = join(work, "traffic.jsonl");
const jwks = join(work, "jwks.json");

async function cli(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...env, ...extraEnv },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The demo policy with `edit` applied, written to a file. */
function policy(name: string, edit: (text: string) => string = (t) => t): string {
  const file = join(work, name);
  const text = edit(demo);
  writeFileSync(file, text);
  return file;
}

/** The demo policy with password-only logins weighing 45 points: it only ever refuses more. */
function stricterPolicy(name: string): string {
  return policy(name, (t) =>
    t.replace(
      "weak_auth: { enabled: true, strong_amr: [mfa, hwk, otp], points: 10",
      "weak_auth: { enabled: true, strong_amr: [mfa, hwk, otp], points: 45",
    ),
  );
}

const lineAt = (n: number) => readFileSync(input, "utf8").split("\n")[n] as string;

/** The first line from `n` on that reaches the signals: an authenticated GET of /v1/items. */
function firstSignalled(from: number): number {
  const lines = readFileSync(input, "utf8").split("\n");
  for (let n = from; n < lines.length; n++) {
    const http = JSON.parse(lines[n] as string).attributes.request.http;
    if (http.path === "/v1/items" && http.method === "GET" && http.headers.authorization) return n;
  }
  throw new Error("no such line");
}

beforeAll(async () => {
  const keys = await loadOrCreateDevKeys(join(work, "keys"));
  writeFileSync(jwks, JSON.stringify(keys.publicJwks));
  const lines: string[] = [];
  for await (const line of generateTraffic({
    keys,
    iss: "https://riskgate.dev/demo",
    aud: "demo-api",
    lines: 2000,
    start: T0,
    gapMs: 300,
    users: 30,
    seed: 11,
  })) {
    lines.push(line);
  }
  writeFileSync(input, `${lines.join("\n")}\n`);
});

describe("riskgate replay (CLI)", () => {
  it("writes one DecisionRecord a line and a summary by decision, route, tier and reason", async () => {
    const out = join(work, "decisions.jsonl");
    const res = await cli([
      "replay",
      "--policy",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--input",
      input,
      "--out",
      out,
    ]);
    // stderr says only which geolocation decided (serve's default: the bundled databases)
    expect(res.stderr).toMatch(/^riskgate replay: geolocation embedded: DB-IP City Lite .*\n$/);
    expect(res.code).toBe(0);
    const records = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(2000);
    expect(records[0]).toMatchObject({
      request_id: "req-0",
      time: expect.stringMatching(/^2026-11-20T09:00:0\d\.\d{3}Z$/),
      decision: expect.stringMatching(/^(allow|challenge|throttle|deny)$/),
      score: expect.any(Number),
      reasons: expect.any(Array),
      route: expect.any(String),
    });
    expect(res.stdout).toMatch(/^decisions: 2000 from 2026-11-20T09:00/);
    for (const title of ["route ", "tier ", "reason code "]) {
      expect(res.stdout).toMatch(
        new RegExp(`\\n${title}\\s+allow\\s+challenge\\s+throttle\\s+deny\\s+total\\n`),
      );
    }
    expect(res.stdout).toMatch(/replayed 2000 decisions in [\d.]+ s \(\d+\/s\)/);
  });

  it("exits 2 naming the line when a line has no time", async () => {
    const bad = join(work, "bad.jsonl");
    const lines = readFileSync(input, "utf8").split("\n").slice(0, 3);
    lines.push('{"attributes":{"request":{"http":{"path":"/v1/items"}}}}');
    writeFileSync(bad, lines.join("\n"));
    const res = await cli([
      "replay",
      "--policy",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--input",
      bad,
      "--out",
      join(work, "x.jsonl"),
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /RISKGATE_REPLAY_INPUT_INVALID: line 4: attributes\.request\.time is missing/,
    );
  });
});

describe("riskgate replay reads geolocation from serve's settings", () => {
  /** One authenticated request from 81.2.69.160, under a policy that scores hosting ASN 64500. */
  function hostingCase(): { policyFile: string; line: string; asnFile: string } {
    const dir = mkdtempSync(join(work, "geo-"));
    const asnFile = writeMmdb(join(dir, "GeoLite2-ASN.mmdb"), {
      databaseType: "GeoLite2-ASN",
      ipVersion: 6,
      networks: {
        "81.2.69.0/24": {
          autonomous_system_number: 64500,
          autonomous_system_organization: "Example Hosting",
        },
      },
    });
    const asnList = join(dir, "hosting.txt");
    writeFileSync(asnList, "AS64500\n");
    const policyFile = policy("hosting.yaml", (t) =>
      t.replace(/^signals:\n/m, `signals:\n  hosting_asn: { enabled: true, file: ${asnList} }\n`),
    );
    const req = JSON.parse(lineAt(firstSignalled(0)));
    const peer = req.attributes.source.address;
    (peer.socket_address ?? peer.socketAddress).address = "81.2.69.160";
    const line = join(dir, "one.jsonl");
    writeFileSync(line, `${JSON.stringify(req)}\n`);
    return { policyFile, line, asnFile };
  }

  it("uses RISKGATE_GEO_ASN_FILES, as serve does, and says so on stderr", async () => {
    const { policyFile, line, asnFile } = hostingCase();
    const args = ["replay", "--policy", policyFile, "--jwks", jwks, "--input", line];
    const res = await cli(args, { RISKGATE_GEO_ASN_FILES: asnFile });
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout.split("\n")[0] as string);
    expect(record.reasons.map((r: { code: string }) => r.code)).toContain("ip.hosting_asn");
    expect(res.stderr).toMatch(/^riskgate replay: geolocation embedded: .*GeoLite2-ASN\.mmdb/m);
  });

  it("honours RISKGATE_GEO=off", async () => {
    const { policyFile, line } = hostingCase();
    const args = ["replay", "--policy", policyFile, "--jwks", jwks, "--input", line];
    const res = await cli(args, { RISKGATE_GEO: "off" });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^riskgate replay: geolocation off: none$/m);
    const record = JSON.parse(res.stdout.split("\n")[0] as string);
    expect(record.reasons.map((r: { code: string }) => r.code)).not.toContain("ip.hosting_asn");
  });
});

describe("riskgate replay --against (what-if)", () => {
  it("exits 0 with no changes when the policies decide alike", async () => {
    const res = await cli([
      "replay",
      "--policy",
      policy("same.yaml"),
      "--against",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--input",
      input,
      "--out",
      join(work, "same.jsonl"),
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/what-if: 2000 decisions .*; 0 changes, 0 new allows/);
  });

  it("exits 0 when the new policy only refuses more, and counts the flips", async () => {
    const stricter = stricterPolicy("stricter.yaml");
    const res = await cli([
      "replay",
      "--policy",
      stricter,
      "--against",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--input",
      input,
      "--out",
      join(work, "s.jsonl"),
    ]);
    expect(res.stderr).toMatch(/^riskgate replay: geolocation embedded: [^\n]*\n$/);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/what-if: 2000 decisions .*; [1-9]\d* changes?, 0 new allows/);
    expect(res.stdout).toMatch(/\nchange\s+count\n(\S+\s+\d+\n)*allow->challenge\s+\d+\n/);
    expect(res.stdout).toMatch(/\nroute +(\S+->\S+ +)*allow->challenge/);
    expect(res.stdout).toMatch(/\ntier +(\S+->\S+ +)*allow->challenge/);
    expect(res.stdout).toMatch(
      /\nreason \(\+ new, - gone, ~ points\)( +\S+->\S+)+\n~auth\.weak( +\d+)+\n/,
    );
    expect(res.stdout).toMatch(/\nexamples:\n( {2}\S+->\S+ {2}req-\d+ .*\n)+/);
    expect(res.stdout).toMatch(/\n {2}allow->challenge {2}req-\d+ .* ~auth\.weak\n/);
  });

  it("exits 1 when the new policy allows a request the old one refused", async () => {
    const looser = policy("looser.yaml", (t) =>
      t.replace(
        "entitlements: [api.read, api.write, reports.export]",
        "entitlements: [api.read, api.write, reports.export, billing.manage]",
      ),
    );
    const res = await cli([
      "replay",
      "--policy",
      looser,
      "--against",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--input",
      input,
      "--out",
      join(work, "l.jsonl"),
    ]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/[1-9]\d* new allows? of requests the old policy refused/);
    expect(res.stdout).toMatch(/deny->allow/);
    expect(res.stdout).toMatch(/-license\.entitlement_missing/);
  });
});

describe("riskgate explain (CLI)", () => {
  it("prints every stage of one CheckRequest's decision in order", async () => {
    const file = join(work, "one.json");
    const n = firstSignalled(0);
    writeFileSync(file, JSON.stringify(JSON.parse(lineAt(n)), null, 2));
    const res = await cli(["explain", "--policy", policy("demo.yaml"), "--jwks", jwks, file]);
    expect(res.stderr).toBe("");
    const labels = res.stdout
      .split("\n")
      .map((l) => /^(\S+)/.exec(l)?.[1])
      .filter(Boolean);
    expect(labels).toEqual([
      "request",
      "route",
      "identity",
      "license",
      "context",
      "signals",
      "score",
      "thresholds",
      "rules",
      "verdict",
    ]);
    expect(res.stdout).toMatch(new RegExp(`^request +req-${n} `));
    expect(res.stdout).toMatch(/\nidentity +verified from bearer: subject user-\d+/);
    expect(res.stdout).toMatch(
      // a limit's op shows the limit and window it enforces
      /\n {2}velocity\.subject +\d+ .*\n +window s:user-\d+\/rate \(limit \d+ per 60 s, exact, \+1\) -> \{"count":1/,
    );
    expect(res.stdout).toMatch(
      /\nthresholds tier \w+, sensitivity \w+.*: challenge_at \d+, deny_at \d+/,
    );
    expect(res.code).toBe(/\nverdict +allow/.test(res.stdout) ? 0 : 1);
    // one tall screen: a line per stage, and per signal its reason and store ops (every signal
    // that needs no site data runs by default, places and the sensitive baseline among them)
    expect(res.stdout.split("\n").length).toBeLessThan(72);
  });

  it("explains a request id of a log with the state the lines before it built", async () => {
    const n = firstSignalled(1500);
    const res = await cli([
      "explain",
      "--policy",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--log",
      input,
      "--request-id",
      `req-${n}`,
    ]);
    expect(res.stdout).toMatch(new RegExp(`^request +req-${n} `));
    // 1,500 requests of 30 users before it: the caller's baseline has samples
    expect(res.stdout).toMatch(
      /baseline s:user-\d+\/base .* -> \{"current":\d+,"mean":[\d.]+,"variance":[\d.]+,"samples":[1-9]/,
    );
    const missing = await cli([
      "explain",
      "--policy",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--log",
      input,
      "--request-id",
      "nope",
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/request id nope not found/);
  });
});

describe("riskgate check --explain", () => {
  it("decides the flags' request locally and explains it", async () => {
    const token = (
      await cli(["token", "--sub", "carol", "--tier", "pro", "--policy", policy("demo.yaml")])
    ).stdout.trim();
    const res = await cli([
      "check",
      "--explain",
      "--dev",
      "--policy",
      policy("demo.yaml"),
      "--token",
      token,
      "--path",
      "/admin/users",
      "--ip",
      "81.2.69.142",
    ]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(
      /^request +\S+ GET api\.example\.com\/admin\/users from 81\.2\.69\.142 at /,
    );
    expect(res.stdout).toMatch(/\nroute +admin-users: .*needs admin\.users/);
    expect(res.stdout).toMatch(/\nidentity +verified from bearer: subject carol, .*tier pro/);
    expect(res.stdout).toMatch(/\nlicense +refused: license\.entitlement_missing/);
    expect(res.stdout).toMatch(/\nverdict +deny \(cause license\)/);
  });
});

describe("the what-if HTML report in a real headless Chromium", () => {
  const chromium = "/usr/bin/chromium";
  const present = existsSync(chromium);
  if (!present && process.env.CI !== "true") {
    it.skip(`needs ${chromium} (Debian: apt-get install chromium)`, () => {});
    return;
  }

  it("is self-contained and renders its charts", async () => {
    expect(present, `${chromium} is missing (apt-get install chromium)`).toBe(true);
    const html = join(work, "report.html");
    const stricter = stricterPolicy("stricter2.yaml");
    const res = await cli([
      "replay",
      "--policy",
      stricter,
      "--against",
      policy("demo.yaml"),
      "--jwks",
      jwks,
      "--input",
      input,
      "--out",
      join(work, "h.jsonl"),
      "--html",
      html,
    ]);
    expect(res.code).toBe(0);
    const text = readFileSync(html, "utf8");
    expect(text).not.toMatch(/<script|<link|https?:\/\/(?!www\.w3\.org)/);

    const { chromium: browserType } = await import("playwright-core");
    const browser = await browserType.launch({ executablePath: chromium, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const external: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith("file:")) external.push(r.url());
      });
      await page.goto(`file://${html}`);
      const charts = await page.$$eval("svg.chart", (svgs) =>
        svgs.map((s) => {
          const box = s.getBoundingClientRect();
          return {
            id: s.getAttribute("data-chart"),
            width: box.width,
            height: box.height,
            rects: s.querySelectorAll("rect").length,
          };
        }),
      );
      expect(charts.map((c) => c.id)).toEqual(["timeline-old", "timeline-new", "flips-by-reason"]);
      for (const c of charts) {
        expect(c.width).toBeGreaterThan(500);
        expect(c.height).toBeGreaterThan(20);
        expect(c.rects).toBeGreaterThan(0);
      }
      // both policies' timelines show allows; the flips chart names the reason that moved
      expect(
        await page.locator('[data-chart="timeline-new"] rect[data-kind="challenge"]').count(),
      ).toBeGreaterThan(0);
      expect(
        await page.locator('[data-chart="flips-by-reason"] [data-bar="~auth.weak"]').count(),
      ).toBe(1);
      expect(external).toEqual([]);

      const shot = join(work, "report.png");
      const png = await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      // PNG header: width and height as big-endian integers at bytes 16 and 20
      expect(png.readUInt32BE(16)).toBe(1200);
      expect(png.readUInt32BE(20)).toBeGreaterThan(900);
      // not blank: the chart area holds the decision colours, not just the background
      const clip = await page.locator('[data-chart="timeline-new"]').boundingBox();
      const area = await page.screenshot({ clip: clip ?? undefined });
      const image = PNG.sync.read(area);
      const colours = new Set<string>();
      for (let p = 0; p < image.data.length; p += 4 * 7) {
        colours.add(`${image.data[p]},${image.data[p + 1]},${image.data[p + 2]}`);
      }
      expect(colours.size).toBeGreaterThan(3);
      expect([...colours]).toContain("58,157,93"); // allow green
      expect([...colours]).toContain("224,165,38"); // challenge amber
    } finally {
      await browser.close();
    }
  });
});
