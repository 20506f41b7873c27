import { z } from "zod";
import { claimPath } from "../../config/policy-fields.js";
import type { CredentialSource } from "../credentials/credential.js";
import { claimAt } from "../license.js";
import type { AccessRequest } from "../request.js";
import { claimCondition, claimConditionHolds } from "./claim-condition.js";
import { type ClientClass, NOTHING, type Signal, type SignalFinding, section } from "./signal.js";

/**
 * `signals.client_class`: no evaluator of its own but a fact every signal reads. Its
 * `machine_skips` name reason codes, so the registry builds it once the reason table is known.
 */
export function clientClassSection(codes: readonly [string, ...string[]]) {
  return section(
    "client_class",
    z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Claims whose value names the class (Auth0 `gty`, Entra ID `idtyp`, your own). */
        claims: z.array(claimPath).default(["client_class", "gty", "idtyp"]),
        machine_values: z
          .array(z.string().min(1).toLowerCase())
          .default(["machine", "client-credentials", "client_credentials", "app", "service"]),
        browser_values: z.array(z.string().min(1).toLowerCase()).default(["browser", "user"]),
        /**
         * Claims naming the OAuth client (Okta `cid`, Entra ID v1.0 `appid`): a subject equal to
         * one is the client itself, and a token with one but no person's claim is a machine.
         */
        client_id_claims: z.array(claimPath).default(["azp", "client_id", "cid", "appid"]),
        /** A token read from the session cookie is a browser session. */
        cookie_is_browser: z.boolean().default(true),
        /**
         * A token carrying one of these claims records an interactive login (OIDC `auth_time`,
         * `amr`, a login session's `sid`, a `nonce`, Okta's user id `uid`): a person's session,
         * classed browser. [] turns this evidence off.
         */
        person_claims: z.array(claimPath).default(["auth_time", "amr", "sid", "nonce", "uid"]),
        /**
         * Claim conditions that mark a machine (an in-house IdP's own marks): any entry that
         * holds classes the token machine. Defaults: Keycloak's service-account user
         * (`service-account-<client>`) and a Google service account's e-mail.
         */
        machine_when: z.array(claimCondition).default([
          { claim: "preferred_username", prefix: "service-account-" },
          { claim: "email", suffix: ".gserviceaccount.com" },
        ]),
        /**
         * The generic evidence: a client id claim and nothing of a person (no `person_claims`,
         * none of `unless_claims`, no scope in `unless_scopes`) is a client-credentials token.
         */
        client_without_login: z
          .strictObject({
            enabled: z.boolean().default(true),
            /** Claims that name a person (a profile, an e-mail): the token is not the client's own. */
            unless_claims: z
              .array(claimPath)
              .default([
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "upn",
                "unique_name",
              ]),
            /** Scopes only a person's login is granted (in `scope` or `scp`). */
            unless_scopes: z.array(z.string().min(1)).default(["openid"]),
          })
          .prefault({}),
        /** Reason codes that describe every legitimate machine client, dropped on machine tokens. */
        machine_skips: z
          .array(z.enum(codes))
          .default([
            "auth.weak",
            "auth.stale",
            "device.posture",
            "device.no_mtls",
            "request.automation",
            "ip.hosting_asn",
            "geo.impossible_travel",
            "geo.new_country",
            "geo.places",
          ]),
      })
      .prefault({}),
  );
}

type ClientClassPolicy = z.output<ReturnType<typeof clientClassSection>["schema"]>;

/** What the client class is read from: the request, the verified claims, the token's source. */
export interface ClientClassInput {
  readonly req: AccessRequest;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly subject: string;
  readonly source: CredentialSource | undefined;
}

/**
 * The client class of one request, first evidence wins:
 * 1. the route says so (Envoy `context_extensions.client_class`: `browser` or `machine`);
 * 2. a class claim (`client_class`, Auth0's `gty: client-credentials`, Entra ID's
 *    `idtyp: app`) holds one of the configured values;
 * 3. the subject is the OAuth client itself (`sub` equals `azp`/`client_id`/`cid`/`appid`, or
 *    Auth0's `<client_id>@clients`): a client-credentials token, no person behind it;
 * 4. the token came from a cookie: a browser session;
 * 5. the token records an interactive login (one of `person_claims`, default `auth_time`,
 *    `amr`, `sid`, `nonce`, `uid`: present only when an end-user authenticated, never on a
 *    client-credentials grant; Cognito's `auth_time` on its client tokens is caught by 3): a
 *    person's session, classed `browser` whether the app is a web page or native;
 * 6. one of `machine_when`'s claim conditions holds (Keycloak's service-account user, a
 *    Google service account, an in-house IdP's marks): a machine;
 * 7. the generic evidence (`client_without_login`): a client id claim, and nothing that names a
 *    person (no profile or e-mail claim, no `openid` scope): a client-credentials token as
 *    Keycloak (its `sub` is the hidden service-account user) or Entra ID without `idtyp` issue it.
 * Otherwise `unknown`, where every signal applies as it did before classes. `acr` is no
 * evidence either way: Keycloak stamps `acr: "1"` on its service accounts' tokens.
 */
export function clientClassOf(cfg: ClientClassPolicy, input: ClientClassInput): ClientClass {
  if (!cfg.enabled || input.source === undefined) return "unknown";
  const routed = input.req.contextExtensions.client_class;
  if (routed === "browser" || routed === "machine") return routed;
  const { claims } = input;
  for (const path of cfg.claims) {
    const value = claimAt(claims, path);
    if (typeof value !== "string") continue;
    const v = value.toLowerCase();
    if (cfg.machine_values.includes(v)) return "machine";
    if (cfg.browser_values.includes(v)) return "browser";
  }
  if (subjectIsClient(cfg, claims, input.subject)) return "machine";
  if (cfg.cookie_is_browser && input.source === "cookie") return "browser";
  if (cfg.person_claims.some((path) => present(claimAt(claims, path)))) return "browser";
  if (cfg.machine_when.some((cond) => claimConditionHolds(claims, cond))) return "machine";
  return clientWithoutLogin(cfg, claims) ? "machine" : "unknown";
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

/** The subject is one of the client id claims (or Auth0's `<client_id>@clients`). */
function subjectIsClient(
  cfg: ClientClassPolicy,
  claims: Readonly<Record<string, unknown>>,
  subject: string,
): boolean {
  if (subject === "") return false;
  for (const path of cfg.client_id_claims) {
    const client = claimAt(claims, path);
    if (typeof client !== "string" || client === "") continue;
    if (subject === client || subject === `${client}@clients`) return true;
  }
  return false;
}

/** A client id claim, and no claim or scope of a person's (the login claims were read before). */
function clientWithoutLogin(
  cfg: ClientClassPolicy,
  claims: Readonly<Record<string, unknown>>,
): boolean {
  const rule = cfg.client_without_login;
  if (!rule.enabled) return false;
  if (!cfg.client_id_claims.some((path) => present(claimAt(claims, path)))) return false;
  if (rule.unless_claims.some((path) => present(claimAt(claims, path)))) return false;
  if (rule.unless_scopes.length === 0) return true;
  for (const name of ["scope", "scp"]) {
    const value = claims[name];
    const scopes = typeof value === "string" ? value.split(" ") : Array.isArray(value) ? value : [];
    if (scopes.some((s) => typeof s === "string" && rule.unless_scopes.includes(s))) return false;
  }
  return true;
}

/**
 * The signal as its client class sees it: on a machine token the reasons listed in
 * `signals.client_class.machine_skips` (no `amr`, no posture, a cloud host, an SDK's user
 * agent) are dropped, because there they describe every legitimate machine client.
 */
export function forClientClass(signal: Signal): Signal {
  const { evaluate } = signal;
  return {
    ...signal,
    evaluate(ctx, results): SignalFinding {
      const finding = evaluate(ctx, results);
      if (ctx.clientClass !== "machine" || finding.reasons.length === 0) return finding;
      const skips = ctx.policy.doc.signals.client_class.machine_skips;
      const reasons = finding.reasons.filter((r) => !skips.includes(r.code));
      if (reasons.length === finding.reasons.length) return finding;
      if (reasons.length === 0 && finding.throttle === undefined && finding.block === undefined) {
        return NOTHING;
      }
      return { ...finding, reasons };
    },
  };
}
