import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("pnpm dev", () => {
  it("runs the CLI from the TypeScript sources, without a build", () => {
    // ATS_LORA_DEBUG prints the stack of an input error: its frames must be the packages' .ts sources, not dist/.
    const run = spawnSync("pnpm", ["-s", "dev", "--workdir", fs.mkdtempSync(path.join(os.tmpdir(), "ats-dev-")), "collect", "import", "/no/such/file.jsonl"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, ATS_LORA_DEBUG: "1" },
    });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain("/no/such/file.jsonl");
    expect(run.stderr).toMatch(/packages\/\w+\/src\/[\w/-]+\.ts/);
    expect(run.stderr).not.toMatch(/packages\/\w+\/dist\//);
  });
});
