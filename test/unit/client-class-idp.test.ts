import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { callerFromClaims } from "../../src/access/license.js";
import { parsePolicy } from "../../src/access/policy.js";
import { clientClassOf } from "../../src/access/signals/client-class.js";
import { withClientSubject } from "../../src/access/subject-fallback.js";
import { accessRequest } from "../helpers/access-request.js";

// Client-credentials and service-account tokens as each major identity provider issues them,
// taken from its documentation (each fixture quotes its source), against a person's token from
// the same IdP. A machine must be classed machine whatever its IdP; a person never.

const DIR = "test/fixtures/idp-tokens";
interface Fixture {
  readonly file: string;
  readonly idp: string;
  readonly kind: "client-credentials" | "service-account" | "user";
  readonly claims: Record<string, unknown>;
}
const FIXTURES: readonly Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .map((file) => ({ file, ...JSON.parse(readFileSync(join(DIR, file), "utf8")) }));
const machines = FIXTURES.filter((f) => f.kind !== "user");
const people = FIXTURES.filter((f) => f.kind === "user");

const demo = readFileSync("policies/demo.yaml", "utf8");
const policyWith = (clientClass: string, subjectLines = "    subject: sub\n") =>
  parsePolicy(
    demo
      .replace("client_class: { enabled: true }", `client_class: { enabled: true${clientClass} }`)
      .replace("    subject: sub\n", subjectLines),
    "t.yaml",
  ).doc;

function classOf(doc: ReturnType<typeof policyWith>, claims: Record<string, unknown>) {
  const paths = doc.identity.claims;
  const caller = withClientSubject(callerFromClaims(claims, paths), claims, paths.subject_fallback);
  return {
    subject: caller.subject,
    cls: clientClassOf(doc.signals.client_class, {
      req: accessRequest(),
      claims,
      subject: caller.subject,
      source: "bearer",
    }),
  };
}

describe("client classes of every major IdP's tokens (test/fixtures/idp-tokens)", () => {
  const doc = policyWith("");

  it("has a machine and a person's token of each IdP", () => {
    const idps = (list: readonly Fixture[]) => [...new Set(list.map((f) => f.idp))].sort();
    expect(idps(machines)).toEqual(idps(people));
    expect(idps(machines)).toEqual([
      "auth0",
      "cognito",
      "entra",
      "google",
      "keycloak",
      "okta",
      "pingone",
    ]);
  });

  it.each(machines.map((f) => [f.file, f] as const))("classes %s machine", (_file, f) => {
    const { subject, cls } = classOf(doc, f.claims);
    expect(subject).not.toBe("");
    expect(cls).toBe("machine");
  });

  it.each(people.map((f) => [f.file, f] as const))("never classes %s machine", (_file, f) => {
    const { subject, cls } = classOf(doc, f.claims);
    expect(subject).not.toBe("");
    expect(cls).not.toBe("machine");
  });

  it("classes a person's token browser when it records a login (auth_time, amr, sid, nonce)", () => {
    const browser = people.filter((f) => classOf(doc, f.claims).cls === "browser");
    // Auth0's and Entra ID v2.0's access tokens record no login at all: unknown, never machine
    expect(browser.map((f) => f.file).sort()).toEqual([
      "cognito-user.json",
      "entra-v1-user.json",
      "google-user.json",
      "keycloak-user.json",
      "okta-user.json",
      "pingone-user.json",
    ]);
  });

  it("recognises the machines without the IdPs' class claims (gty, idtyp)", () => {
    const bare = policyWith(", claims: []");
    for (const f of machines)
      expect([f.file, classOf(bare, f.claims).cls]).toEqual([f.file, "machine"]);
    for (const f of people) expect(classOf(bare, f.claims).cls).not.toBe("machine");
  });

  it("names a PingOne client-credentials token (no sub) by its client id", () => {
    const ping = machines.find((f) => f.idp === "pingone") as Fixture;
    expect(ping.claims.sub).toBeUndefined();
    expect(classOf(doc, ping.claims).subject).toBe(ping.claims.client_id);
    // subject_fallback: [] refuses it as before (no subject)
    const off = policyWith("", "    subject: sub\n    subject_fallback: []\n");
    expect(classOf(off, ping.claims).subject).toBe("");
    // a token with a sub never falls back, even when the configured subject claim is missing
    const byEmail = policyWith("", "    subject: email\n");
    expect(classOf(byEmail, { sub: "u-1", client_id: "app" }).subject).toBe("");
  });

  it("classes a client id without any person's claim machine (the generic evidence)", () => {
    // Keycloak's service account without the profile scope: no preferred_username
    const keycloak = machines.find((f) => f.idp === "keycloak") as Fixture;
    const { preferred_username: _u, email_verified: _e, ...noProfile } = keycloak.claims;
    const noMarks = policyWith(", machine_when: []");
    expect(classOf(noMarks, noProfile).cls).toBe("machine");
    // with the profile scope, the default machine_when (service-account-<client>) says so
    expect(classOf(noMarks, keycloak.claims).cls).toBe("unknown");
    expect(classOf(doc, keycloak.claims).cls).toBe("machine");
    // turned off, the generic evidence no longer classes it
    const off = policyWith(", machine_when: [], client_without_login: { enabled: false }");
    expect(classOf(off, noProfile).cls).toBe("unknown");
  });

  it("takes an in-house IdP's marks from machine_when", () => {
    const doc2 = policyWith(
      ", client_without_login: { enabled: false }, machine_when: [{ claim: token_kind, equals: [service] }, { claim: roles, prefix: 'svc:' }]",
    );
    const base = { iss: "https://idp.internal", sub: "job-7", tier: "pro" };
    expect(classOf(doc2, { ...base, token_kind: "service" }).cls).toBe("machine");
    expect(classOf(doc2, { ...base, token_kind: "user" }).cls).toBe("unknown");
    expect(classOf(doc2, { ...base, roles: ["reader", "svc:export"] }).cls).toBe("machine");
    // an interactive login comes first: a person's token with the mark stays a person's
    expect(classOf(doc2, { ...base, token_kind: "service", auth_time: 1 }).cls).toBe("browser");
  });

  it("rejects a machine_when entry that contradicts itself", () => {
    expect(() => policyWith(", machine_when: [{ claim: x, present: false, equals: [y] }]")).toThrow(
      /present: false/,
    );
  });
});
