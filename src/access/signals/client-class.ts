import { z } from "zod";
import { claimPath } from "../../config/policy-fields.js";
import type { CredentialSource } from "../credentials/credential.js";
import { claimAt } from "../license.js";
import type { AccessRequest } from "../request.js";
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
        /** A subject equal to one of these claims is the OAuth client itself: a machine. */
        client_id_claims: z.array(claimPath).default(["azp", "client_id", "cid"]),
        /** A token read from the session cookie is a browser session. */
        cookie_is_browser: z.boolean().default(true),
        /**
         * A token carrying one of these claims records an interactive login (OIDC `auth_time`,
         * `amr`): a person's session, classed browser. [] turns this evidence off.
         */
        person_claims: z.array(claimPath).default(["auth_time", "amr"]),
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
 * 3. the subject is the OAuth client itself (`sub` equals `azp`/`client_id`/`cid`, or Auth0's
 *    `<client_id>@clients`): a client-credentials token, no person behind it;
 * 4. the token came from a cookie: a browser session;
 * 5. the token records an interactive login (one of `person_claims`, default OIDC `auth_time`
 *    and `amr`: present only when an end-user authenticated, never on a client-credentials
 *    grant): a person's session, classed `browser` whether the app is a web page or native.
 * Otherwise `unknown`, where every signal applies as it did before classes.
 */
export function clientClassOf(cfg: ClientClassPolicy, input: ClientClassInput): ClientClass {
  if (!cfg.enabled || input.source === undefined) return "unknown";
  const routed = input.req.contextExtensions.client_class;
  if (routed === "browser" || routed === "machine") return routed;
  for (const path of cfg.claims) {
    const value = claimAt(input.claims, path);
    if (typeof value !== "string") continue;
    const v = value.toLowerCase();
    if (cfg.machine_values.includes(v)) return "machine";
    if (cfg.browser_values.includes(v)) return "browser";
  }
  if (input.subject !== "") {
    for (const path of cfg.client_id_claims) {
      const client = claimAt(input.claims, path);
      if (
        typeof client === "string" &&
        client !== "" &&
        (input.subject === client || input.subject === `${client}@clients`)
      ) {
        return "machine";
      }
    }
  }
  if (cfg.cookie_is_browser && input.source === "cookie") return "browser";
  for (const path of cfg.person_claims) {
    const value = claimAt(input.claims, path);
    if (value !== undefined && value !== null && value !== "") return "browser";
  }
  return "unknown";
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
