import { createHash } from "node:crypto";

/**
 * How each identity provider shapes a client-credentials (service account) access token, taken
 * from test/fixtures/idp-tokens/<idp>-*.json (each with its documentation source). The
 * evaluation's `iss` and `aud` stay the policy's (an IdP is configured for the API it serves),
 * and `org`/`tier` are custom claims every one of these IdPs can add (mappers, Actions, token
 * hooks, resource attributes). Everything else is the IdP's own.
 */
export const IDP_SHAPES = [
  "keycloak",
  "okta",
  "auth0",
  "auth0-rfc9068",
  "entra-v1",
  "entra-v2",
  "cognito",
  "google",
  "pingone",
] as const;

export type IdpShape = (typeof IDP_SHAPES)[number];

/** Default access token lifetime of each IdP, seconds (Entra ID draws 60-90 minutes per token). */
export function tokenLifetimeSeconds(idp: IdpShape, draw: number): number {
  switch (idp) {
    case "keycloak":
      return 300; // the realm's default access token lifespan
    case "auth0":
    case "auth0-rfc9068":
      return 86_400;
    case "entra-v1":
    case "entra-v2":
      return 3600 + Math.floor(draw * 1800);
    default:
      return 3600;
  }
}

function uuidOf(seed: string): string {
  const h = createHash("sha256").update(seed).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function digitsOf(seed: string, n: number): string {
  const h = createHash("sha256").update(seed).digest();
  let out = "1";
  for (let i = 0; out.length < n; i++) out += String((h[i % h.length] as number) % 10);
  return out;
}

/** The identifiers an IdP gives one registered client: what `sub`, `azp` and friends hold. */
export interface ClientIds {
  /** What the client authenticates with at the token endpoint. */
  readonly clientId: string;
  /** The token's subject, or undefined when the IdP sends none (PingOne). */
  readonly subject: string | undefined;
}

/** The client id and subject an IdP assigns to the machine client named `name`. */
export function clientIdsOf(idp: IdpShape, name: string): ClientIds {
  switch (idp) {
    case "keycloak":
      // the client id is the name the operator chose; sub is the hidden service-account user
      return { clientId: name, subject: uuidOf(`kc-sa:${name}`) };
    case "okta": {
      const cid = `0oa${createHash("sha256").update(name).digest("base64url").replace(/[-_]/g, "x").slice(0, 17)}`;
      return { clientId: cid, subject: cid };
    }
    case "auth0":
    case "auth0-rfc9068": {
      const id = createHash("sha256")
        .update(name)
        .digest("base64url")
        .replace(/[-_]/g, "Q")
        .slice(0, 32);
      return { clientId: id, subject: `${id}@clients` };
    }
    case "entra-v1":
    case "entra-v2":
      // sub and oid are the service principal, not the application (client) id
      return { clientId: uuidOf(`app:${name}`), subject: uuidOf(`sp:${name}`) };
    case "cognito": {
      const id = createHash("sha256")
        .update(name)
        .digest("hex")
        .replace(/[0-9]/g, "")
        .padEnd(26, "k")
        .slice(0, 26);
      return { clientId: id, subject: id };
    }
    case "google": {
      const id = digitsOf(`gsa:${name}`, 21);
      return { clientId: id, subject: id };
    }
    case "pingone":
      return { clientId: uuidOf(`p1:${name}`), subject: undefined };
  }
}

/** What one machine token says besides iss, aud, iat, exp (seconds) and the custom org/tier. */
export function machineClaims(idp: IdpShape, name: string, iat: number): Record<string, unknown> {
  const { clientId, subject } = clientIdsOf(idp, name);
  const jti = uuidOf(`${name}:${iat}`);
  switch (idp) {
    case "keycloak":
      return {
        jti,
        sub: subject,
        typ: "Bearer",
        azp: clientId,
        acr: "1",
        scope: "profile email",
        email_verified: false,
        clientHost: "10.0.3.17",
        preferred_username: `service-account-${clientId}`,
        clientAddress: "10.0.3.17",
        client_id: clientId,
      };
    case "okta":
      return {
        ver: 1,
        jti: `AT.${jti}`,
        cid: clientId,
        scp: ["reports.read", "projects.read"],
        sub: subject,
      };
    case "auth0":
      return {
        sub: subject,
        scope: "read:projects read:reports",
        gty: "client-credentials",
        azp: clientId,
      };
    case "auth0-rfc9068":
      return { sub: subject, client_id: clientId, jti, scope: "read:projects read:reports" };
    case "entra-v1":
    case "entra-v2": {
      const v1 = idp === "entra-v1";
      return {
        ...(v1 ? { appid: clientId, appidacr: "1" } : { azp: clientId, azpacr: "1" }),
        idtyp: "app",
        oid: subject,
        roles: ["Projects.Read.All", "Reports.Read.All"],
        sub: subject,
        tid: uuidOf("tenant"),
        uti: jti.replace(/-/g, "").slice(0, 22),
        ver: v1 ? "1.0" : "2.0",
        nbf: iat,
      };
    }
    case "cognito":
      // Cognito stamps auth_time (= iat) on client-credentials tokens too
      return {
        sub: subject,
        token_use: "access",
        scope: "api/projects.read api/reports.read",
        auth_time: iat,
        version: 2,
        jti,
        client_id: clientId,
      };
    case "google":
      return {
        azp: clientId,
        email: `${name}@${name.split("-")[1] ?? "acme"}-prod.iam.gserviceaccount.com`,
        email_verified: true,
        sub: subject,
      };
    case "pingone":
      return { client_id: clientId, scope: "projects:read reports:read", env: uuidOf("p1-env") };
  }
}
