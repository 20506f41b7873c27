/**
 * Well-known automation clients, matched case-insensitively as substrings. Fixed (not the
 * policy's list) so an audit line means the same under every policy.
 */
export const AUTOMATION_AGENTS: readonly string[] = [
  "curl",
  "wget",
  "python-requests",
  "python-urllib",
  "aiohttp",
  "httpx",
  "go-http-client",
  "okhttp",
  "java/",
  "apache-httpclient",
  "libwww-perl",
  "node-fetch",
  "axios",
  "postman",
  "scrapy",
  "headless",
  "phantomjs",
  "selenium",
  "puppeteer",
  "playwright",
  "bot",
  "crawler",
  "spider",
];

/**
 * The class of a user agent, for audit lines (the user agent itself is free text a client
 * chooses, so it is not logged): `none` (no header), `automation:<token>` (one of
 * {@link AUTOMATION_AGENTS}), `browser` (a `Mozilla/` agent) or `other`.
 */
export function userAgentClass(ua: string | undefined): string {
  if (ua === undefined || ua === "") return "none";
  const lower = ua.toLowerCase();
  for (const token of AUTOMATION_AGENTS) {
    if (lower.includes(token)) return `automation:${token}`;
  }
  return lower.startsWith("mozilla/") ? "browser" : "other";
}

/** A user agent standing for a class when a request is rebuilt from an audit line. */
export function userAgentOfClass(cls: string): string | undefined {
  if (cls === "none" || cls === "") return undefined;
  if (cls.startsWith("automation:")) return cls.slice("automation:".length);
  if (cls === "browser") return "Mozilla/5.0 (replayed browser)";
  return "replayed-client";
}
