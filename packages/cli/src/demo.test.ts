import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@ats-lora/core";
import { cosine, Embedder } from "@ats-lora/embeddings";
import puppeteer from "puppeteer-core";
import { chromiumPath } from "@ats-lora/core/testing";
import { beforeAll, describe, expect, it } from "vitest";

// The whole loop as a user runs it: the real CLI, the real Python worker, node-llama-cpp, the real SmolLM2-135M-Instruct
// and the bundled sample data. The demo runs once here (9 to 10 minutes on 2 cores alone); every other test reuses it.
const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, "..", "dist", "bin.js");
const DOCS = path.resolve(HERE, "..", "..", "..", "docs");
const PARENT = fs.mkdtempSync(path.join(os.tmpdir(), "ats-demo-"));

// Scoring the references' loss through node-llama-cpp costs about as much as generating them; the tests that do not
// check it leave it out.
const NO_REFERENCE_LOSS = { ATS_LORA_EVAL__REFERENCE_LOSS: "false" };

function cli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Row {
  prompt: string;
  completion: string;
  task: string;
}

function rows(file: string): Row[] {
  return fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((line) => JSON.parse(line) as Row);
}

let W: string;
let demo: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(() => {
  const run = cli(["--json", "demo"], { cwd: PARENT });
  expect(run.code, run.stderr.slice(-3000)).toBe(0);
  demo = JSON.parse(run.stdout);
  W = demo.workdir;
}, 1_800_000);

describe("ats-lora demo, then eval from outside", () => {
  it("runs collect → build-db → models pull → rag build → train → export → eval in a new folder, and tuned beats base with intervals clear of zero", () => {
    expect(path.dirname(W)).toBe(fs.realpathSync(PARENT));
    expect(path.basename(W)).toMatch(/^ats-lora-demo-\d{8}-\d{6}/);
    expect(demo.stages.map((stage: { name: string }) => stage.name)).toEqual([
      "collect import",
      "collect stats",
      "build-db",
      "models pull",
      "rag build",
      "train",
      "export",
      "eval base vs tuned",
    ]);
    expect(demo.stats.interactions).toBeGreaterThan(150);
    expect(demo.rag.manifest.counts.chunks).toBeGreaterThan(100);
    expect(demo.base_model).toMatchObject({ name: "smollm2-135m-instruct", path: path.join(W, "models", "smollm2-135m-instruct") });
    expect(demo.base_model.weights).toMatch(/\.gguf$/);
    expect(demo.training.tasks).toEqual(["resume_parse", "match_score"]);
    expect(demo.training.metrics.train_loss_last).toBeLessThan(demo.training.metrics.train_loss_first);
    expect(fs.readFileSync(demo.export.output).subarray(0, 4).toString()).toBe("GGUF");

    const { comparison } = demo;
    expect(comparison.examples).toBe(demo.training.rows.test);
    // The learning the demo exists to show: each of these better, its paired bootstrap 95% interval clear of zero.
    const metric = (group: string, name: string) => comparison.metrics.find((entry: { group: string; metric: string }) => entry.group === group && entry.metric === name);
    for (const [group, name] of [
      ["resume_parse", "json_validity"],
      ["resume_parse", "field_f1"],
      ["match_score", "mae"],
    ] as const) {
      const entry = metric(group, name);
      expect(entry, `${group}.${name}`).toBeDefined();
      expect(entry.outcome, `${group}.${name}: ${JSON.stringify(entry)}`).toBe("better");
      if (entry.better === "higher") expect(entry.low, `${group}.${name}`).toBeGreaterThan(0);
      else expect(entry.high, `${group}.${name}`).toBeLessThan(0);
    }
    expect(comparison.summary.some((line: string) => line.startsWith("tuned is better than base on resume parsing:"))).toBe(true);
    // Answers that end: no tuned resume-parse answer runs to the token limit.
    expect(comparison.tuned.resume_parse.hit_token_limit).toBeLessThanOrEqual(comparison.base.resume_parse.hit_token_limit);
    for (const file of ["json", "markdown", "html", "predictions"]) expect(fs.existsSync(demo.report[file]), file).toBe(true);
    expect(demo.report.html).toBe(path.join(W, "eval", "demo", "report.html"));
  });

  it("keeps every test prompt out of the training rows: none identical, none a near-duplicate by the embedder", async () => {
    const pairs = path.join(W, "feedback_db", "training_pairs");
    const manifest = JSON.parse(fs.readFileSync(path.join(pairs, "manifest.json"), "utf8"));
    // build-db's own check, over every split and format: no val or test prompt identical or near-identical to a train prompt.
    expect(manifest.splits.leakage).toMatchObject({ violations: 0, examples: [] });
    expect(manifest.splits.leakage.compared.test).toBeGreaterThan(0);
    const train = rows(path.join(pairs, "sft", "train.jsonl"));
    const test = rows(path.join(pairs, "sft", "test.jsonl"));
    const trainPrompts = new Set(train.map((row) => row.prompt));
    expect(test.filter((row) => trainPrompts.has(row.prompt))).toEqual([]);
    // Independently of build-db's own check: each prompt's last 1,000 characters before the answer (the end of the
    // candidate's resume, in both tasks), embedded, against every training row of the same task. A test resume
    // copied from a training one, with a new name or job above it, would come close to 1.
    const input = (prompt: string) => prompt.slice(0, prompt.lastIndexOf("### Response:")).slice(-1000);
    const embedder = await Embedder.fromConfig(loadConfig({ env: {} }));
    const vectors = (await embedder.embed([...train, ...test].map((row) => input(row.prompt)))).vectors;
    const threshold = loadConfig({ env: {} }).dataset.dedupe_threshold;
    let closest = 0;
    test.forEach((row, t) => {
      train.forEach((other, r) => {
        if (other.task === row.task) closest = Math.max(closest, cosine(vectors[train.length + t]!, vectors[r]!));
      });
    });
    expect(closest).toBeGreaterThan(0);
    expect(closest).toBeLessThan(threshold);
  }, 120_000);

  it("renders the report in Chromium with the verdict first, and saves its screenshot to docs/", async () => {
    const browser = await puppeteer.launch({ executablePath: chromiumPath(), args: ["--no-sandbox", "--headless=new"] });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 900 });
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(String(error)));
      page.on("requestfailed", (request) => problems.push(`request ${request.url()}`));
      await page.goto(`file://${demo.report.html}`, { waitUntil: "load" });
      const drawn = (await page.evaluate(`(() => ({
        firstHeading: document.querySelector("body > :not(h1)")?.className,
        verdictLines: [...document.querySelectorAll(".verdict li")].map((item) => item.textContent),
        bars: [...document.querySelectorAll("svg.chart.bars rect.bar")].filter((bar) => bar.getBoundingClientRect().width > 0).length,
        examples: document.querySelectorAll("section.example").length,
        scripts: document.querySelectorAll("script").length,
      }))()`)) as { firstHeading: string; verdictLines: string[]; bars: number; examples: number; scripts: number };
      expect(problems).toEqual([]);
      expect(drawn.firstHeading).toBe("verdict");
      expect(drawn.verdictLines).toEqual(expect.arrayContaining(demo.comparison.summary));
      expect(drawn.bars).toBeGreaterThan(10);
      expect(drawn.examples).toBeGreaterThan(0);
      expect(drawn.scripts).toBe(0);
      await page.screenshot({ path: path.join(DOCS, "demo-report.png") });
    } finally {
      await browser.close();
    }
    expect(fs.statSync(path.join(DOCS, "demo-report.png")).size).toBeGreaterThan(20_000);
  }, 120_000);

  it("prints the --json keys recorded in demo-json-keys.json", () => {
    // Every key path of the result, arrays as [], recorded from the real-model demo's --json: scripts that read it
    // learn of a change here.
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
    // The demo's own test rows, so the reference losses are the ones the demo's eval scored.
    const test = path.join(W, "demo", "training_pairs", "sft", "test.jsonl");
    const testRows = rows(test);
    const predictions = path.join(W, "api-outputs.jsonl");
    fs.writeFileSync(predictions, testRows.map((row) => JSON.stringify({ prompt: row.prompt, prediction: row.completion })).join("\n") + "\n");
    // --model names what produced the predictions.
    const run = cli(["--workdir", W, "eval", "--model", demo.training.adapter, "--predictions", predictions, "--test_data", test, "--baseline", "tfidf", "--json"], { env: NO_REFERENCE_LOSS });
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.systems.map((system: { name: string; role: string }) => [system.name, system.role])).toEqual([
      ["demo-v1", "predictions"],
      ["baseline-tfidf", "baseline"],
    ]);
    expect(report.systems[0].metrics.overall).toMatchObject({ n: testRows.length, rouge_l: 1, exact_match: 1 });
    expect(report.systems[0].metrics.overall.semantic_similarity).toBeCloseTo(1, 4);
    expect(report.systems[0].metrics.resume_parse.json_validity).toBe(1);
    expect(report.systems[0].metrics.match_score.mae).toBe(0);
    expect(fs.existsSync(report.report_files.html)).toBe(true);

    // A local adapter named by --model also scores the references' loss under it (eval.reference_loss).
    const scored = cli(["--workdir", W, "eval", "--model", demo.training.adapter, "--predictions", predictions, "--test_data", test, "--limit", "1", "--json"]);
    expect(scored.code, scored.stderr).toBe(0);
    const perplexity = JSON.parse(scored.stdout).systems[0].metrics.overall.perplexity;
    expect(perplexity).toBeGreaterThan(1);
    expect(Number.isFinite(perplexity)).toBe(true);

    const unnamed = cli(["--workdir", W, "eval", "--predictions", predictions, "--test_data", test, "--json"], { env: NO_REFERENCE_LOSS });
    expect(unnamed.code, unnamed.stderr).toBe(0);
    expect(JSON.parse(unnamed.stdout).systems[0]).toMatchObject({ name: "api-outputs", role: "predictions" });
    expect(JSON.parse(unnamed.stdout).systems[0].metrics.overall).not.toHaveProperty("perplexity");

    fs.writeFileSync(predictions, testRows.slice(1).map((row) => JSON.stringify({ prompt: row.prompt, prediction: row.completion })).join("\n") + "\n");
    const partial = cli(["--workdir", W, "eval", "--predictions", predictions, "--test_data", test]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toContain("test line 1: no prediction for the prompt");
  }, 300_000);

  it("evaluates an adapter against its base and another version through node-llama-cpp, with --rag, from the command line", () => {
    const out = path.join(W, "eval", "cli");
    const args = ["--workdir", W, "eval", "--model", demo.training.adapter, "--base", demo.base_model.path, "--compare", demo.training.adapter];
    const run = cli([...args, "--rag", "--limit", "4", "--max-new-tokens", "16", "--out", out, "--json"], { env: NO_REFERENCE_LOSS });
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
    const child = spawn(process.execPath, [BIN, "--workdir", W, "eval", "--engine", "worker", "--model", demo.training.adapter, "--base", demo.base_model.path, "--out", out]);
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
});
