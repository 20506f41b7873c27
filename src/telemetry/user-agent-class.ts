/**
 * Well-known automation clients: the token matched (case-insensitively, as a substring) and
 * the agent that stands for it when a request is rebuilt from an audit line. Fixed (not the
 * policy's list) so an audit line means the same under every policy.
 */
export const AUTOMATION_AGENTS: readonly (readonly [token: string, agent: string])[] = [
  ["curl", "curl/8.5.0"],
  ["wget", "Wget/1.21.4"],
  ["python-requests", "python-requests/2.31.0"],
  ["python-urllib", "Python-urllib/3.11"],
  ["aiohttp", "Python/3.11 aiohttp/3.9.1"],
  ["httpx", "python-httpx/0.27.0"],
  ["go-http-client", "Go-http-client/1.1"],
  ["okhttp", "okhttp/4.12.0"],
  ["java/", "Java/17.0.9"],
  ["apache-httpclient", "Apache-HttpClient/4.5.14"],
  ["libwww-perl", "libwww-perl/6.72"],
  ["node-fetch", "node-fetch/1.0"],
  ["axios", "axios/1.6.2"],
  ["postman", "PostmanRuntime/7.36.0"],
  ["scrapy", "Scrapy/2.11.0"],
  ["headless", "Mozilla/5.0 HeadlessChrome/120.0.0.0"],
  ["phantomjs", "Mozilla/5.0 PhantomJS/2.1.1"],
  ["selenium", "selenium/4.16.0"],
  ["puppeteer", "puppeteer/21.6.0"],
  ["playwright", "Playwright/1.40.0"],
  ["bot", "bot/1.0"],
  ["crawler", "crawler/1.0"],
  ["spider", "spider/1.0"],
];

/**
 * The class of a user agent, for audit lines (the user agent itself is free text a client
 * chooses, so it is not logged): `none` (no header), `automation:<token>` (one of
 * {@link AUTOMATION_AGENTS}), `browser` (a `Mozilla/` agent) or `other`.
 */
export function userAgentClass(ua: string | undefined): string {
  if (ua === undefined || ua === "") return "none";
  const lower = ua.toLowerCase();
  for (const [token] of AUTOMATION_AGENTS) {
    if (lower.includes(token)) return `automation:${token}`;
  }
  return lower.startsWith("mozilla/") ? "browser" : "other";
}

/** A user agent standing for a class when a request is rebuilt from an audit line. */
export function userAgentOfClass(cls: string): string | undefined {
  if (cls === "none" || cls === "") return undefined;
  if (cls.startsWith("automation:")) {
    const token = cls.slice("automation:".length);
    return AUTOMATION_AGENTS.find(([t]) => t === token)?.[1] ?? token;
  }
  if (cls === "browser") return "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0";
  return "unclassified-client/1.0";
}
