import type { IdpShape } from "./idp.js";
import { CITIES, type City, type CityName, CLOUD, type CloudName } from "./places.js";

/** A customer organisation of the simulated B2B API. */
export interface Org {
  readonly id: string;
  /** License tier the identity provider writes into tokens. */
  readonly tier: "free" | "pro" | "enterprise";
  readonly city: CityName;
  /** Whether the org's IdP enforces MFA at login. */
  readonly mfa: boolean;
  /** The office's one public NAT address. */
  readonly officeIp: string;
  /** The org's identity provider: its machine clients' tokens take that IdP's shape. */
  readonly idp: IdpShape;
}

const org = (
  id: string,
  tier: Org["tier"],
  city: CityName,
  mfa: boolean,
  officeIndex: number,
  idp: IdpShape,
): Org => ({
  id,
  tier,
  city,
  mfa,
  officeIp: pickIp(CITIES[city], officeIndex),
  idp,
});

function pickIp(city: City, i: number): string {
  return city.ips[i % city.ips.length] as string;
}

/** The customer base: a spread of tiers, countries and MFA practice as a B2B SaaS has it. */
export const ORGS: readonly Org[] = [
  org("acme", "enterprise", "berlin", true, 0, "keycloak"),
  org("brightpath", "pro", "munich", false, 0, "okta"),
  org("northwind", "enterprise", "london", true, 0, "entra-v2"),
  org("lumen", "pro", "paris", false, 0, "auth0"),
  org("harbor", "enterprise", "newYork", true, 0, "okta"),
  org("goldengate", "pro", "sanFrancisco", true, 0, "auth0-rfc9068"),
  org("sakura", "pro", "tokyo", false, 0, "cognito"),
  org("merlion", "pro", "singapore", true, 0, "google"),
  org("paulista", "pro", "saoPaulo", false, 0, "pingone"),
  org("tinyco", "free", "warsaw", false, 0, "auth0"),
  org("maple", "enterprise", "toronto", false, 0, "entra-v1"),
  org("fjord", "pro", "stockholm", true, 0, "keycloak"),
];

export function orgById(id: string): Org {
  const o = ORGS.find((x) => x.id === id);
  if (!o) throw new TypeError(`unknown org ${id}`);
  return o;
}

/** Browser user agents in roughly their 2026 desktop/mobile shares. */
export const BROWSER_UAS: readonly string[] = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36 Edg/141.0.0.0",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
];

export const MOBILE_UAS: readonly string[] = [
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Mobile Safari/537.36",
];

/** What SDKs and server-side integrations send: library defaults, as they are in the wild. */
export const SDK_UAS: readonly string[] = [
  "acme-api-python/3.2.0 python-requests/2.32.3",
  "acme-api-node/5.1.4 node/22.11.0",
  "acme-api-go/1.9.0 Go-http-client/2.0",
  "okhttp/4.12.0",
  "python-requests/2.32.3",
];

/** What scheduled jobs on servers send: their HTTP library's default user agent. */
export const JOB_UAS: readonly string[] = [
  "Go-http-client/2.0",
  "okhttp/4.12.0",
  "python-requests/2.32.3",
  "aws-sdk-java/2.25.60 Linux/5.10.223-211.872.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS Java/21.0.4 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
  "Apache-HttpClient/5.3.1 (Java/17.0.12)",
  "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
];

/** Plain automation tools. */
export const AUTOMATION_UAS: readonly string[] = [
  "curl/8.11.1",
  "python-requests/2.32.3",
  "Go-http-client/1.1",
  "Scrapy/2.11.2 (+https://scrapy.org)",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/141.0.0.0 Safari/537.36",
  "Wget/1.24.5",
];

export function cloudIps(names: readonly CloudName[]): string[] {
  return names.flatMap((n) => [...CLOUD[n].ips]);
}
