import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// bench/gpu.sh, the GPU benchmark, in its CPU dry mode: the same scripts (random model, training rows, the product's
// `ats-lora train`, the Trainer + PEFT baseline, the result writer) on a shrunk model, so a change that breaks the GPU
// run breaks this test. About a minute on 2 cores.
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SCRIPT = path.join(REPO, "bench", "gpu.sh");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "ats-bench-gpu-"));

function bench(args: string[], timeoutMs: number) {
  const result = spawnSync("bash", [SCRIPT, ...args], { cwd: REPO, encoding: "utf8", timeout: timeoutMs, env: { ...process.env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface System {
  tokens: number;
  tokens_per_second: number;
  peak_memory_bytes: number;
  peak_memory_kind: string;
  mfu: number | null;
}

afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

describe("bench/gpu.sh", () => {
  it("--help prints the usage; an unknown flag is an error", () => {
    const help = bench(["--help"], 10_000);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: bash bench/gpu.sh");
    expect(help.stdout).toContain("--cpu-dry");
    const wrong = bench(["--no-such-flag"], 10_000);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("unknown argument: --no-such-flag");
  });

  it.skipIf(spawnSync("nvidia-smi", ["-L"]).status === 0)("without --cpu-dry and without a GPU says so and exits 1", () => {
    const run = bench(["--out", path.join(TMP, "nogpu"), "--work", path.join(TMP, "nogpu-work")], 60_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no CUDA device/);
    expect(run.stderr).toContain("--cpu-dry");
  });

  it(
    "--cpu-dry runs the product and the baseline and writes the JSON and the Markdown table",
    () => {
      const out = path.join(TMP, "results");
      const run = bench(["--cpu-dry", "--out", out, "--work", path.join(TMP, "work")], 170_000);
      expect(run.code, run.stderr.slice(-3000)).toBe(0);
      const files = fs.readdirSync(out);
      const json = files.find((name) => /^gpu-\d{4}-\d{2}-\d{2}-cpu-dry\.json$/.test(name));
      expect(json, files.join(", ")).toBeDefined();
      const result = JSON.parse(fs.readFileSync(path.join(out, json!), "utf8")) as {
        mode: string;
        dry_run: boolean;
        device: { kind: string };
        versions: Record<string, string | null>;
        model: { parameters: number; architecture: string };
        settings: { steps: number; max_seq_length: number };
        systems: { product: System; baseline: System };
        ratios: { tokens_per_second: number | null; peak_memory: number | null };
        goal: { pass: boolean | null; verdict: string };
      };
      expect(result.mode).toBe("cpu-dry");
      expect(result.dry_run).toBe(true);
      expect(result.device.kind).toBe("cpu");
      expect(result.model.architecture).toBe("MistralForCausalLM");
      expect(result.model.parameters).toBeGreaterThan(0);
      for (const name of ["torch", "transformers", "peft", "trl", "bitsandbytes"]) expect(result.versions[name]).toBeTruthy();
      const { product, baseline } = result.systems;
      for (const system of [product, baseline]) {
        expect(system.tokens_per_second).toBeGreaterThan(0);
        expect(system.peak_memory_bytes).toBeGreaterThan(0);
        expect(system.peak_memory_kind).toBe("process_max_rss");
      }
      // The same rows, tokenized the same way: the same tokens trained on.
      expect(product.tokens).toBe(baseline.tokens);
      expect(product.tokens).toBe(result.settings.steps * result.settings.max_seq_length);
      expect(result.ratios.tokens_per_second).toBeGreaterThan(0);
      expect(result.ratios.peak_memory).toBeGreaterThan(0);
      expect(result.goal.pass).toBeNull();

      const table = fs.readFileSync(path.join(out, json!.replace(/\.json$/, ".md")), "utf8");
      expect(table).toContain("CPU DRY RUN");
      expect(table).toMatch(/\| tokens\/s \| [\d,.]+ \| [\d,.]+ \| [\d.]+× \|/);
      expect(table).toContain("| peak memory, GiB");
      expect(run.stdout).toContain("| tokens/s |");
    },
    180_000,
  );
});
