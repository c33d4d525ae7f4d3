import { defineConfig } from "vitest/config";

export default defineConfig({
  // Tests import each package's TypeScript sources through the "source" export condition.
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native addons (better-sqlite3, node-pty) are safest in forked processes.
    pool: "forks",
    // In CI a JSON report too, from which .ci/run prints a plain "N passed, N failed" line.
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".vitest-report.json" }]] : ["default"],
  },
});
