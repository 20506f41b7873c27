import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (test/unit: one process, fake clocks and the memory store; a few call the
 * built CLI, so they need `npm run build` first) and `integration` (real servers, Redis, child
 * processes, browsers and proxies). `npm test` runs both; `npx vitest run --project unit` runs
 * the unit tests alone.
 */
export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 90_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      {
        extends: true,
        test: {
          name: "integration",
          include: [
            "test/integration/**/*.test.ts",
            "test/e2e/**/*.test.ts",
            "test/deploy/**/*.test.ts",
          ],
        },
      },
    ],
  },
});
