import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AccessRequest } from "../../src/access/request.js";
import type { GeoLocation } from "../../src/geo/geo-reader.js";
import { createMemoryStore } from "../../src/state/memory-store.js";
import type { Store, StoreBatch } from "../../src/state/store.js";
import { TEST_NOW } from "../helpers/access-request.js";
import { fixedGeo } from "../helpers/fixed-geo.js";
import { codes, minutes, pipelineCheck } from "../helpers/pipeline-check.js";

// Credential stuffing with valid logins (signals.stuffing) and sticky risk that
// cannot feed itself. Whole pipeline on the demo policy (stuffing and sticky risk on, with its
// rules), real (memory) state; the store ops used (has, member, distinct, get, swap) run
// against Redis in the store contract suite.

const demoText = readFileSync("policies/demo.yaml", "utf8");

const OFFICE = "192.0.2.10"; // acme's office, Berlin
const BOT_BR = "198.51.100.20"; // a residential proxy in Brazil
const PROXY_DE = "203.0.113.40"; // a German address no acme member used
const where: Record<string, GeoLocation> = {
  [OFFICE]: { country: "DE", latitude: 52.52, longitude: 13.405, asn: 3320 },
  [BOT_BR]: { country: "BR", latitude: -23.55, longitude: -46.633, asn: 28573 },
  [PROXY_DE]: { country: "DE", latitude: 50.11, longitude: 8.68, asn: 3209 },
};
const geo = fixedGeo(where, { city: true, asn: true });

const person = (sub: string, org: string) => ({ sub, org, tier: "pro", amr: ["pwd", "mfa"] });
const claims: Record<string, Record<string, unknown>> = {
  alice: person("u-alice", "acme"),
  bob: person("u-bob", "acme"),
  carol: person("u-carol", "acme"),
  dormant: person("u-acme-dormant", "acme"),
  dormant2: person("u-acme-dormant-2", "acme"),
  other1: person("u-other-1", "globex"),
  other2: person("u-other-2", "initech"),
  other3: person("u-other-3", "umbrella"),
  // a new colleague abroad: password login, then a password login again, then a step-up
  newcomer: { ...person("u-newcomer", "acme"), amr: ["pwd"], auth_time: TEST_NOW / 1000 },
  newcomerPwd: { ...person("u-newcomer", "acme"), amr: ["pwd"], auth_time: TEST_NOW / 1000 + 300 },
  newcomerMfa: { ...person("u-newcomer", "acme"), auth_time: TEST_NOW / 1000 + 600 },
  // a client-credentials token (the subject is the client): a machine
  sdk: { sub: "0oa1svc", cid: "0oa1svc", tier: "pro", org: "acme" },
  sdk2: { sub: "0oa2svc", cid: "0oa2svc", tier: "pro", org: "globex" },
  sdk3: { sub: "0oa3svc", cid: "0oa3svc", tier: "pro", org: "initech" },
};

function setup(policyText = demoText, store: Store = createMemoryStore()) {
  const check = pipelineCheck(policyText, { claims, geo, store });
  return (token: string, clientIp: string, over: Partial<AccessRequest> = {}) =>
    check(token, { clientIp, ...over });
}

/**
 * A member's first trusted request makes it trusted; only a member trusted for
 * `org_learning_seconds` (an hour) teaches its org, so a stuffed account allowed for a few
 * requests cannot: allowed requests an hour apart.
 */
async function member(check: ReturnType<typeof setup>, token: string, ip: string, at = -120) {
  expect((await check(token, ip, { receivedAt: minutes(at) })).kind).toBe("allow");
  expect((await check(token, ip, { receivedAt: minutes(at + 61) })).kind).toBe("allow");
}

describe("a dormant account judged by its org's history", () => {
  it("steps up a never-trusted subject from a country no trusted member of its org used", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    const stuffed = await check("dormant", BOT_BR, { receivedAt: minutes(1) });
    expect(codes(stuffed)).toContain("stuffing.org_new_country");
    expect(stuffed).toMatchObject({ kind: "challenge" });
    expect(codes(stuffed)).toContain("rule.stuffing-first-sighting");
    // a colleague first seen in the org's country is no news
    const colleague = await check("bob", PROXY_DE, { receivedAt: minutes(2) });
    expect(codes(colleague)).not.toContain("stuffing.org_new_country");
    expect(colleague.kind).toBe("allow");
  });

  it("says nothing while the org has no trusted history, or once the subject has its own", async () => {
    const check = setup();
    // the org's first member: nothing to compare with
    expect(codes(await check("alice", BOT_BR))).not.toContain("stuffing.org_new_country");
    const check2 = setup();
    await member(check2, "alice", OFFICE);
    await member(check2, "bob", OFFICE, 1);
    // bob travels: trusted already, so the org's countries do not judge him (geo signals do)
    const trip = await check2("bob", BOT_BR, { receivedAt: minutes(14 * 60) });
    expect(codes(trip)).not.toContain("stuffing.org_new_country");
  });

  it("learns the org's countries only from allowed requests", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    // refused twice from Brazil: Brazil does not become one of acme's countries
    expect((await check("dormant", BOT_BR, { receivedAt: minutes(1) })).kind).toBe("challenge");
    const next = await check("dormant2", BOT_BR, { receivedAt: minutes(2) });
    expect(codes(next)).toContain("stuffing.org_new_country");
  });
});

describe("a first sighting answered by a step-up", () => {
  it("clears after a strong login later than the refusal, not after a password again", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    const first = await check("newcomer", BOT_BR, { receivedAt: minutes(1) });
    expect(first.kind).toBe("challenge");
    expect(codes(first)).toContain("stuffing.org_new_country");
    // what a stuffing tool can do: log in with the password again
    const again = await check("newcomerPwd", BOT_BR, { receivedAt: minutes(6) });
    expect(codes(again)).toContain("stuffing.org_new_country");
    // the person answers the challenge with MFA: a strong login after the first refusal
    const stepped = await check("newcomerMfa", BOT_BR, { receivedAt: minutes(11) });
    expect(codes(stepped)).not.toContain("stuffing.org_new_country");
    expect(codes(stepped)).not.toContain("rule.stuffing-first-sighting");
  });
});

describe("one address carrying many orgs' people", () => {
  it("refuses subjects not trusted there once the address carried three orgs in the day", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    expect((await check("bob", PROXY_DE, { receivedAt: minutes(1) })).kind).toBe("allow");
    // a stuffing source in acme's own country: other orgs' accounts, hours apart
    await check("other1", PROXY_DE, { receivedAt: minutes(60) });
    await check("other2", PROXY_DE, { receivedAt: minutes(120) });
    const stuffed = await check("carol", PROXY_DE, { receivedAt: minutes(180) });
    expect(codes(stuffed)).toContain("stuffing.many_orgs_ip");
    // the demo policy steps it up (rule stuffing-source-ip: a CGNAT user can answer, a stuffed
    // password cannot)
    expect(stuffed.kind).toBe("challenge");
    expect(codes(stuffed)).toContain("rule.stuffing-source-ip");
    // bob was trusted on that network before it became a source: not his doing
    const bob = await check("bob", PROXY_DE, { receivedAt: minutes(181) });
    expect(codes(bob)).not.toContain("stuffing.many_orgs_ip");
    expect(bob.kind).toBe("allow");
  });

  it("steps up a never-trusted subject on an address another org's people used today", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    await check("other1", PROXY_DE, { receivedAt: minutes(30) });
    const stuffed = await check("dormant", PROXY_DE, { receivedAt: minutes(60) });
    expect(codes(stuffed)).toEqual(
      expect.arrayContaining(["stuffing.first_sighting_shared_ip", "rule.stuffing-first-sighting"]),
    );
    expect(stuffed.kind).toBe("challenge");
  });

  it("lets a new colleague in at the org's own office, whoever else used its address", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    // a visitor of another org on the office's address
    await check("other1", OFFICE, { receivedAt: minutes(30) });
    const newcomer = await check("carol", OFFICE, { receivedAt: minutes(60) });
    expect(codes(newcomer)).not.toContain("stuffing.first_sighting_shared_ip");
    expect(newcomer.kind).toBe("allow");
  });

  it("does not let a stuffed account's second request make the source its org's network", async () => {
    const check = setup();
    await member(check, "alice", OFFICE);
    // the source's first account, before anything is known: allowed twice
    expect((await check("bob", PROXY_DE, { receivedAt: minutes(1) })).kind).toBe("allow");
    expect((await check("bob", PROXY_DE, { receivedAt: minutes(2) })).kind).toBe("allow");
    await check("other1", PROXY_DE, { receivedAt: minutes(3) });
    // the next acme account from there is still a first sighting on someone else's address
    const next = await check("dormant", PROXY_DE, { receivedAt: minutes(4) });
    expect(codes(next)).toContain("stuffing.first_sighting_shared_ip");
  });

  it("leaves machine tokens alone and does not count their orgs", async () => {
    const check = setup();
    for (const [i, sdk] of ["sdk", "sdk2", "sdk3"].entries()) {
      const v = await check(sdk, PROXY_DE, { receivedAt: minutes(i) });
      expect(codes(v).filter((c) => c.startsWith("stuffing."))).toEqual([]);
    }
    await member(check, "alice", OFFICE, 5);
    // three orgs' machines on one integration host: a person there is no stuffing victim
    const bob = await check("bob", PROXY_DE, { receivedAt: minutes(6) });
    expect(codes(bob).filter((c) => c.startsWith("stuffing."))).toEqual([]);
  });
});

describe("sticky risk that cannot feed itself", () => {
  const sticky = (text: string) =>
    text.replace(
      /^ {2}sticky_risk:.*\n/m,
      "  sticky_risk: { enabled: true, points: 20, duration_seconds: 900 }\n",
    );

  it("never holds a machine token (nothing can log in again for it)", async () => {
    // a rule that refuses the machine once, then a request that would be allowed
    const text = sticky(demoText).replace(
      "\nrules:\n",
      "\nrules:\n  - name: no-export\n    when: { routes: [reports-export] }\n    action: challenge\n",
    );
    const check = setup(text);
    const refused = await check("sdk", OFFICE, { path: "/v1/reports/1/export" });
    // a machine is never challenged: the rule's challenge becomes a throttle
    expect(refused.kind).toBe("throttle");
    const next = await check("sdk", OFFICE, { receivedAt: minutes(1) });
    expect(codes(next)).not.toContain("risk.sticky");
    expect(next.kind).toBe("allow");
    // a person's session refused the same way carries it
    await check("alice", OFFICE, { path: "/v1/reports/1/export", receivedAt: minutes(2) });
    expect(codes(await check("alice", OFFICE, { receivedAt: minutes(3) }))).toContain(
      "risk.sticky",
    );
  });

  it("counts a sticky subject's refusals once as failures of its address", async () => {
    const batches: StoreBatch[] = [];
    const memory = createMemoryStore();
    const store: Store = {
      kind: "memory",
      exec(batch) {
        batches.push(batch);
        return memory.exec(batch);
      },
      close: () => memory.close(),
    };
    const check = setup(sticky(demoText), store);
    await member(check, "alice", OFFICE);
    // 30 refusals of one subject in ten minutes: the first made it sticky, the rest repeat it
    for (let i = 0; i < 30; i++) {
      const v = await check("dormant", BOT_BR, { receivedAt: minutes(1 + i / 5) });
      expect(v.kind).toBe("challenge");
    }
    const failures = batches.flatMap((b) =>
      b.ops.filter((op) => op.op === "window" && op.key.name === "fail" && op.cost === 1),
    );
    expect(failures).toHaveLength(1);
    // so the address is not turned against the next person by one subject's own refusals
    const next = await check("bob", BOT_BR, { receivedAt: minutes(8) });
    expect(codes(next)).not.toContain("attempts.failed_ip");
  });
});
