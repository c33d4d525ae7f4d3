import os from "node:os";
import { defineConfig } from "vitest/config";

// Vitest's own default for a run: one test file per core but one.
const CORES = os.availableParallelism();
const WORKERS = Math.max(CORES - 1, 1);

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
    maxWorkers: WORKERS,
    // llama.cpp's threads spin while they wait for each other and slow to a crawl when another process holds a core,
    // so node-llama-cpp gets the cores shared out between the test files running side by side (on 2 cores: one file
    // at a time, with both cores).
    env: { ATS_LORA_LLAMA_THREADS: process.env.ATS_LORA_LLAMA_THREADS ?? String(Math.max(1, Math.floor(CORES / WORKERS))) },
    // In CI a JSON report too, from which .ci/run prints a plain "N passed, N failed" line.
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".vitest-report.json" }]] : ["default"],
  },
});
