import { describe, expect, it } from "vitest";
import { pathAmbiguity } from "../../src/transport/path-ambiguity.js";

describe("paths whose meaning depends on the upstream", () => {
  it.each([
    ["/admin/..%2fusers", "escaped slash"],
    ["/v1/items%2F..%2Fadmin", "escaped slash"],
    ["/v1/%5c../admin", "escaped slash"],
    ["/v1\\..\\admin", "backslash"],
    ["/admin..;/users", "; path parameter"],
    ["/v1/items;jsessionid=1", "; path parameter"],
    ["/v1/%252e%252e/admin", "double percent-encoding"],
    ["/v1/..%252fadmin", "double percent-encoding"],
    ["/v1/%c0%af../admin", "not UTF-8"],
    ["/v1/%e0%80%af", "not UTF-8"],
    ["/v1/%ff", "not UTF-8"],
    ["/v1/items#/admin", "raw #"],
    ["/v1/items?q=1#frag", "raw #"],
    ["/v1/items%00.json", "control character"],
    ["/v1/%zz", "broken percent-encoding"],
    ["/v1/100%", "broken percent-encoding"],
  ])("%s: %s", (raw, why) => {
    expect(pathAmbiguity(raw)).toContain(why);
  });

  it.each([
    "/",
    "/v1/items",
    "/x/../admin",
    "//admin",
    "/%61dmin",
    "/v1/%2e%2e/admin", // escaped dots resolve as Envoy's normalize_path resolves them
    "/caf%C3%A9/%E2%82%AC",
    "/v1/search?q=a%2Fb;c\\d", // the query is the upstream's to read
    "/v1/items%20x",
  ])("%s is not ambiguous", (raw) => {
    expect(pathAmbiguity(raw)).toBeUndefined();
  });
});
