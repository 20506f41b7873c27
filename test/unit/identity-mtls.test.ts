import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { createIdentifier } from "../../src/access/identity.js";
import { createStaticKeySource, type KeySource } from "../../src/access/key-source.js";
import { parsePolicy } from "../../src/access/policy.js";
import type { ResolvedRoute } from "../../src/access/routes.js";
import { PolicyError } from "../../src/errors.js";
import { peerOfCertificate, peerOfHeader } from "../../src/transport/peer-certificate.js";
import { accessRequest as baseRequest } from "../helpers/access-request.js";
import { identityPolicy, NOW, type TestKey, testKey } from "../helpers/jwt.js";

let es: TestKey;
let keys: KeySource;

beforeAll(async () => {
  es = await testKey("es-1", "ES256");
  keys = createStaticKeySource({ keys: [es.jwk] }, "test keys");
});

const INVOICER = "spiffe://cluster.local/ns/billing/sa/invoicer";
const PEERS = [
  { principal: "spiffe://cluster.local/ns/billing/sa/*", org: "billing", tier: "internal" },
  {
    principal: "spiffe://cluster.local/ns/billing/sa/auditor",
    subject: "auditor",
    tier: "audit",
    entitlements: ["reports.export"],
  },
  { principal: "spiffe://cluster.local/ns/billing/sa/inv*", tier: "invoicing" },
  { principal: "frontend.web.svc", tier: "web", client_class: "browser" },
];

const identifier = () => createIdentifier({ keys }, identityPolicy({ mtls: { peers: PEERS } }));

const route = (peer: "enough" | "with_token" | "off"): ResolvedRoute =>
  ({ name: "r", auth: "required", sensitivity: "low", rule: { peer } }) as unknown as ResolvedRoute;

const peerRequest = (principal: string, headers: Record<string, string> = {}, names?: string[]) =>
  baseRequest({
    principal,
    headers: new Map(Object.entries(headers)),
    ...(names === undefined ? {} : { peerNames: names }),
  });

describe("mTLS peers as callers", () => {
  it("maps an exact principal, else the longest prefix, to the policy's caller (a machine)", async () => {
    const id = identifier();
    const auditor = await id.identify(
      peerRequest("spiffe://cluster.local/ns/billing/sa/auditor"),
      NOW,
    );
    expect(auditor).toMatchObject({
      kind: "verified",
      source: "mtls",
      clientClass: "machine",
      caller: { subject: "auditor", tier: "audit", entitlements: ["reports.export"] },
    });
    expect(Object.isFrozen(auditor.kind === "verified" ? auditor.caller : {})).toBe(true);
    // the longer prefix wins over the namespace-wide one, whatever their order in the policy
    expect(await id.identify(peerRequest(INVOICER), NOW)).toMatchObject({
      caller: { subject: INVOICER, tier: "invoicing", org: "" },
    });
    expect(
      await id.identify(peerRequest("spiffe://cluster.local/ns/billing/sa/ledger"), NOW),
    ).toMatchObject({
      caller: {
        subject: "spiffe://cluster.local/ns/billing/sa/ledger",
        org: "billing",
        tier: "internal",
      },
    });
  });

  it("reads the certificate's DNS name when the principal is unmapped, and the policy's class", async () => {
    const out = await identifier().identify(
      peerRequest("spiffe://other/ns/x/sa/y", {}, ["spiffe://other/ns/x/sa/y", "frontend.web.svc"]),
      NOW,
    );
    expect(out).toMatchObject({ source: "mtls", clientClass: "browser", caller: { tier: "web" } });
  });

  it("peer: enough prefers the user's token, and an unmapped peer is no credential", async () => {
    const id = identifier();
    const token = await es.sign({ claims: { sub: "alice", tier: "pro" } });
    expect(
      await id.identify(
        peerRequest(INVOICER, { authorization: `Bearer ${token}` }),
        NOW,
        route("enough"),
      ),
    ).toMatchObject({ source: "bearer", caller: { subject: "alice" } });
    expect(await id.identify(peerRequest("spiffe://elsewhere/sa/x"), NOW, route("enough"))).toEqual(
      { kind: "anonymous" },
    );
    expect(await id.identify(peerRequest(""), NOW, route("enough"))).toEqual({ kind: "anonymous" });
  });

  it("peer: with_token needs a mapped peer and a user token; the user is the caller", async () => {
    const id = identifier();
    const token = await es.sign({ claims: { sub: "alice", tier: "pro" } });
    const auth = { authorization: `Bearer ${token}` };
    expect(await id.identify(peerRequest(INVOICER, auth), NOW, route("with_token"))).toMatchObject({
      kind: "verified",
      source: "bearer",
      peer: INVOICER,
      caller: { subject: "alice", tier: "pro" },
    });
    expect(await id.identify(peerRequest("", auth), NOW, route("with_token"))).toMatchObject({
      kind: "invalid",
      reason: "identity.peer_missing",
      method: "mtls",
    });
    expect(
      await id.identify(peerRequest("spiffe://elsewhere/sa/x", auth), NOW, route("with_token")),
    ).toMatchObject({ kind: "invalid", reason: "identity.peer_unknown" });
    expect(await id.identify(peerRequest(INVOICER), NOW, route("with_token"))).toMatchObject({
      kind: "invalid",
      reason: "identity.missing",
    });
    expect(
      await id.identify(
        peerRequest(INVOICER, { authorization: "Bearer x.y.z" }),
        NOW,
        route("with_token"),
      ),
    ).toMatchObject({ kind: "invalid", reason: "identity.malformed" });
  });

  it("peer: off never takes the peer as the caller, and neither does a policy without mtls", async () => {
    expect(await identifier().identify(peerRequest(INVOICER), NOW, route("off"))).toEqual({
      kind: "anonymous",
    });
    const plain = createIdentifier({ keys }, identityPolicy());
    expect(await plain.identify(peerRequest(INVOICER), NOW, route("enough"))).toEqual({
      kind: "anonymous",
    });
  });
});

describe("the mtls policy", () => {
  const policy = (mtls: string, routePeer = "enough") =>
    parsePolicy(
      `version: 1
identity:
  issuers: [i]
  audiences: [a]
${mtls}
tiers: { internal: {} }
routes:
  - { name: r, peer: ${routePeer} }
`,
      "p.yaml",
    );

  it("refuses a * that is not the pattern's end, an unknown tier, and with_token without mtls", () => {
    expect(() =>
      policy("  mtls: { peers: [{ principal: 'spiffe://*/sa/x', tier: internal }] }"),
    ).toThrow(PolicyError);
    expect(() => policy("  mtls: { peers: [{ principal: 'spiffe://a/*', tier: gold }] }")).toThrow(
      /identity\.mtls\.peers\[0\]\.tier/,
    );
    expect(() => policy("", "with_token")).toThrow(/peer: with_token needs identity.mtls/);
    expect(
      policy("  mtls: { peers: [{ principal: 'spiffe://a/*', tier: internal }] }", "with_token").doc
        .identity.mtls?.peers[0]?.client_class,
    ).toBe("machine");
  });
});

describe("the peer's certificate", () => {
  const pem = readFileSync("test/fixtures/peer-certs/invoicer.pem", "utf8");

  it("names its URI and DNS SANs, from PEM as Envoy URL-encodes it or as a proxy sends it", () => {
    const expected = { principal: INVOICER, names: [INVOICER, "invoicer.billing.svc"] };
    expect(peerOfCertificate(encodeURIComponent(pem))).toEqual(expected);
    expect(peerOfHeader(encodeURIComponent(pem))).toEqual(expected);
    const der = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
    expect(peerOfHeader(der)).toEqual(expected);
    expect(peerOfCertificate("not a certificate")).toEqual({ principal: "", names: [] });
  });

  it("reads the nearest proxy's element of an XFCC header", () => {
    const xfcc =
      'By=spiffe://cluster.local/ns/edge/sa/gw;Hash=abc;URI=spiffe://forged/sa/x,By=spiffe://cluster.local/ns/api/sa/api;Hash=def;Subject="CN=a,O=b";URI=spiffe://cluster.local/ns/billing/sa/invoicer;DNS=invoicer.billing.svc';
    expect(peerOfHeader(xfcc)).toEqual({
      principal: INVOICER,
      names: [INVOICER, "invoicer.billing.svc"],
    });
    expect(peerOfHeader(`Hash=abc;Cert="${encodeURIComponent(pem)}"`).principal).toBe(INVOICER);
  });
});
