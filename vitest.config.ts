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
    // Test files run side by side on few cores; llama.cpp's threads spin while they wait for each other and slow to a
    // crawl when another process holds a core, so node-llama-cpp gets one thread in tests (ATS_LORA_LLAMA_THREADS).
    env: { ATS_LORA_LLAMA_THREADS: process.env.ATS_LORA_LLAMA_THREADS ?? "1" },
    // In CI a JSON report too, from which .ci/run prints a plain "N passed, N failed" line.
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".vitest-report.json" }]] : ["default"],
  },
});
