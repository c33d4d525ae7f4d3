import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

// The whole loop as a user runs it: the real CLI, the real Python worker, the bundled sample data.
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
const PARENT = fs.mkdtempSync(path.join(os.tmpdir(), "ats-demo-"));

function cli(args: string[], options: { cwd?: string } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let W: string;
let demo: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(() => {
  const run = cli(["--json", "demo"], { cwd: PARENT });
  expect(run.code, run.stderr.slice(-3000)).toBe(0);
  demo = JSON.parse(run.stdout);
  W = demo.workdir;
}, 900_000);

describe("ats-lora demo, then eval from outside", () => {
  it("runs collect → build-db → rag build → train → eval in a new folder and prints the comparison and the report", () => {
    expect(path.dirname(W)).toBe(fs.realpathSync(PARENT));
    expect(path.basename(W)).toMatch(/^ats-lora-demo-\d{8}-\d{6}/);
    expect(demo.stages.map((stage: { name: string }) => stage.name)).toEqual([
      "collect import",
      "collect stats",
      "build-db",
      "create the tiny base model",
      "rag build",
      "train",
      "eval base vs tuned",
    ]);
    expect(demo.stats.interactions).toBeGreaterThan(150);
    expect(demo.rag.manifest.counts.chunks).toBeGreaterThan(100);
    expect(demo.training.metrics.train_loss_last).toBeLessThan(demo.training.metrics.train_loss_first);
    const { comparison } = demo;
    expect(comparison.examples).toBe(demo.training_pairs.counts.sft.test);
    for (const side of [comparison.base, comparison.tuned]) {
      expect(Object.keys(side)).toEqual(expect.arrayContaining(["overall", "resume_parse", "match_score", "interview_question"]));
      expect(side.overall).toEqual(expect.objectContaining({ semantic_similarity: expect.any(Number), rouge_l: expect.any(Number), perplexity: expect.any(Number) }));
    }
    // Trained on the same kind of answers, the adapter predicts the references better than its base.
    expect(comparison.tuned.overall.perplexity).toBeLessThan(comparison.base.overall.perplexity);
    const perplexity = comparison.metrics.find((metric: { group: string; metric: string }) => metric.group === "overall" && metric.metric === "perplexity");
    expect(perplexity.outcome).toBe("better");
    expect(comparison.verdict).toMatch(/^tuned is .* base on \d+ examples/);
    for (const file of ["json", "markdown", "html", "predictions"]) expect(fs.existsSync(demo.report[file]), file).toBe(true);
    expect(demo.report.html).toBe(path.join(W, "eval", "demo", "report.html"));
    const html = fs.readFileSync(demo.report.html, "utf8");
    expect(html).toContain('<svg class="chart loss"');
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it("prints the same --json keys as before the operations layer (demo-json-keys.json)", () => {
    // Every key path of the result, arrays as [], recorded from the demo's --json on main before the refactor.
    const expected = JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "demo-json-keys.json"), "utf8")) as string[];
    const found = new Set<string>();
    const walk = (value: unknown, at: string): void => {
      if (Array.isArray(value)) {
        found.add(`${at}[]`);
        for (const item of value) walk(item, `${at}[]`);
      } else if (value !== null && typeof value === "object") {
        found.add(at || ".");
        for (const [key, item] of Object.entries(value)) walk(item, `${at}.${key}`);
      } else found.add(at);
    };
    walk(demo, "");
    expect([...found].sort()).toEqual(expected);
  });

  it("scores given predictions with eval --predictions, and names what does not match", () => {
    const test = path.join(W, "feedback_db", "training_pairs", "sft", "test.jsonl");
    const rows = fs.readFileSync(test, "utf8").trim().split("\n").map((line) => JSON.parse(line) as { prompt: string; completion: string });
    const predictions = path.join(W, "api-outputs.jsonl");
    fs.writeFileSync(predictions, rows.map((row) => JSON.stringify({ prompt: row.prompt, prediction: row.completion })).join("\n") + "\n");
    // --model names what produced the predictions; a local adapter also scores the references' loss.
    const run = cli(["--workdir", W, "eval", "--model", demo.training.adapter, "--predictions", predictions, "--test_data", test, "--baseline", "tfidf", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.systems.map((system: { name: string; role: string }) => [system.name, system.role])).toEqual([
      ["demo-v1", "predictions"],
      ["baseline-tfidf", "baseline"],
    ]);
    expect(report.systems[0].metrics.overall.perplexity).toBeCloseTo(demo.comparison.tuned.overall.perplexity, 6);
    expect(report.systems[0].metrics.overall).toMatchObject({ n: rows.length, rouge_l: 1, exact_match: 1 });
    expect(report.systems[0].metrics.overall.semantic_similarity).toBeCloseTo(1, 4);
    expect(report.systems[0].metrics.resume_parse.json_validity).toBe(1);
    expect(report.systems[0].metrics.match_score.mae).toBe(0);
    expect(fs.existsSync(report.report_files.html)).toBe(true);

    const unnamed = cli(["--workdir", W, "eval", "--predictions", predictions, "--test_data", test, "--json"]);
    expect(unnamed.code, unnamed.stderr).toBe(0);
    expect(JSON.parse(unnamed.stdout).systems[0]).toMatchObject({ name: "api-outputs", role: "predictions" });
    expect(JSON.parse(unnamed.stdout).systems[0].metrics.overall).not.toHaveProperty("perplexity");

    fs.writeFileSync(predictions, rows.slice(1).map((row) => JSON.stringify({ prompt: row.prompt, prediction: row.completion })).join("\n") + "\n");
    const partial = cli(["--workdir", W, "eval", "--predictions", predictions, "--test_data", test]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toContain("test line 1: no prediction for the prompt");
  }, 300_000);

  it("evaluates an adapter against its base and another version through the worker, with --rag, from the command line", () => {
    const out = path.join(W, "eval", "cli");
    const args = ["--workdir", W, "eval", "--model", demo.training.adapter, "--base", demo.base_model.path, "--compare", demo.training.adapter];
    const run = cli([...args, "--rag", "--limit", "4", "--max-new-tokens", "16", "--out", out, "--json"]);
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.systems.map((system: { name: string; role: string }) => [system.name, system.role])).toEqual([
      ["tuned", "model"],
      ["base", "base"],
      ["demo-v1", "compare"],
    ]);
    expect(report.settings.rag).toMatchObject({ store: path.join(W, "vector_store"), top_k: 5, mode: "hybrid" });
    const tuned = report.systems[0];
    expect(tuned.metrics.overall.n).toBe(4);
    expect(tuned.metrics.overall.tokens_per_second).toBeGreaterThan(0);
    expect(tuned.training.loss_curve.length).toBeGreaterThan(0);
    expect(report.comparisons[0].verdict).toMatch(/^tuned is .* base on 4 examples/);
    // The same adapter under another name: greedy decoding gives the same outputs, so every delta is zero.
    const same = report.comparisons[1];
    expect(same.against).toBe("demo-v1");
    expect(same.verdict).toMatch(/^tuned is not clearly different from demo-v1/);
    for (const metric of same.metrics.filter((entry: { metric: string }) => !entry.metric.startsWith("latency") && entry.metric !== "tokens_per_second")) {
      expect(metric.delta, metric.metric).toBeCloseTo(0, 6);
    }
    const predictions = fs.readFileSync(path.join(out, "predictions.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line));
    expect(predictions[0].prompt).toContain("### Context:");
    expect(predictions[0].outputs.tuned.text).toBe(predictions[0].outputs["demo-v1"].text);
  }, 300_000);

  it("stops a running eval on Ctrl-C through the worker (exit 130), writing no report", async () => {
    const out = path.join(W, "eval", "interrupted");
    const child = spawn(process.execPath, [BIN, "--workdir", W, "eval", "--model", demo.training.adapter, "--base", demo.base_model.path, "--out", out]);
    let stderr = "";
    let interrupted = false;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes("tuned: generating") && !interrupted) {
        interrupted = true;
        setTimeout(() => child.kill("SIGINT"), 1500);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code, stderr).toBe(130);
    expect(stderr).toContain("generation cancelled");
    expect(fs.existsSync(path.join(out, "report.json"))).toBe(false);
  }, 120_000);

  it("runs again in the same folder", () => {
    const again = cli(["--workdir", W, "--json", "demo"]);
    expect(again.code, again.stderr.slice(-3000)).toBe(0);
    const result = JSON.parse(again.stdout);
    expect(result.imports[0].interactions.inserted).toBe(0);
    expect(result.base_model.created).toBeNull();
    expect(result.rag.files.unchanged.length).toBe(demo.rag.files.added.length);
  }, 900_000);
});
