import { describe, expect, it } from "vitest";
import { MAX_DISTINCT, MAX_EMPTY_BUCKETS } from "../../src/state/limits.js";
import { STORE_SCRIPT } from "../../src/state/redis-script.js";

describe("store bounds", () => {
  it("the Redis script is generated with the bounds the memory store uses", () => {
    expect(STORE_SCRIPT).toContain(`local MAX_DISTINCT = ${MAX_DISTINCT}\n`);
    expect(STORE_SCRIPT).toContain(`local MAX_EMPTY = ${MAX_EMPTY_BUCKETS}\n`);
  });
});
