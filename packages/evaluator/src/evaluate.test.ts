import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";
import { chromiumPath } from "@ats-lora/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, taskAnswerJsonSchema, type ProgressSink } from "@ats-lora/core";
import { Embedder } from "@ats-lora/embeddings";
import { evaluate, type GenerateOptions, type Generation, type ModelRunner } from "./evaluate.js";
import type { EvalReport, ExampleRecord } from "./report-types.js";
import { writeReport } from "./report.js";
import { matchPredictions } from "./held-out-set.js";
import { sampleExamples } from "./test-support.js";

// The real embedder (the bundled MiniLM ONNX model) and predictions files written here; the model runner is
// exercised by the CLI tests against the real worker.
const config = loadConfig({ env: {} });
const examples = sampleExamples(config);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-eval-"));
let embedder: Embedder;

function predictionsFile(name: string, predict: (completion: string, index: number) => string): string {
  const file = path.join(dir, `${name}.jsonl`);
  fs.writeFileSync(file, examples.map((example, i) => JSON.stringify({ prompt: example.prompt, prediction: predict(example.completion, i) })).join("\n") + "\n");
  return file;
}

beforeAll(async () => {
  embedder = await Embedder.load({ model: config.embeddings.model, dtype: config.embeddings.dtype });
}, 120_000);
afterAll(async () => {
  await embedder?.close();
});

describe("evaluate (real embedder)", () => {
  let report: EvalReport;
  let records: ExampleRecord[];

  beforeAll(async () => {
    const oracle = predictionsFile("oracle", (completion) => completion);
    const constant = predictionsFile("constant", () => '{"match_score": 0.5}');
    ({ report, examples: records } = await evaluate({
      config,
      testFile: path.join(dir, "test.jsonl"),
      examples,
      systems: [
        { name: "oracle", role: "predictions", file: oracle },
        { name: "constant", role: "predictions", file: constant },
        { name: "baseline-tfidf", role: "baseline", method: "tfidf" },
      ],
      embedder,
      maxNewTokens: 64,
      seed: 7,
      bootstrapSamples: 300,
    }));
  }, 120_000);

  it("scores the oracle perfectly on every task, with the embedder's own similarities", async () => {
    const oracle = report.systems[0]!;
    expect(oracle.metrics.overall).toMatchObject({ n: 8, rouge_l: 1, exact_match: 1 });
    expect(oracle.metrics.overall!.semantic_similarity).toBeCloseTo(1, 5);
    expect(oracle.metrics.resume_parse).toMatchObject({ json_validity: 1, field_f1: 1 });
    expect(oracle.metrics.match_score).toMatchObject({ mae: 0, accuracy_within_0_2: 1, f1: 1 });
    expect(oracle.metrics.interview_question).toMatchObject({ specificity: 1, follow_up_addresses_vague_part: 1 });
    const question = examples[5]!;
    const resume = /### Context:\n([\s\S]*?)\n\n---/.exec(question.prompt)![1]!;
    const { vectors } = await embedder.embed([question.completion, resume]);
    const cosine = vectors[0]!.reduce((sum, value, i) => sum + value * vectors[1]![i]!, 0);
    // int8 activations are quantized per batch, so the same pair embedded beside other texts (every system's answers,
    // the TF-IDF baseline's scores among them) moves by up to about 0.01.
    expect(Math.abs(records[5]!.outputs.oracle!.scores.relevance! - cosine)).toBeLessThan(0.02);
    expect(oracle.fields).toMatchObject({ name: { f1: 1, support: 2 }, skills: { f1: 1, support: 4 } });
  });

  it("scores the constant run as by hand, and compares it with intervals that exclude zero where it is clearly worse", () => {
    const constant = report.systems[1]!;
    expect(constant.metrics.match_score!.mae).toBeCloseTo(0.7 / 3, 12);
    expect(constant.metrics.resume_parse).toMatchObject({ json_validity: 1, field_f1: 0 });
    const comparison = report.comparisons[0]!;
    expect(comparison).toMatchObject({ system: "oracle", against: "constant", examples: 8 });
    const rouge = comparison.metrics.find((metric) => metric.group === "overall" && metric.metric === "rouge_l")!;
    expect(rouge.delta).toBeCloseTo(1 - constant.metrics.overall!.rouge_l!, 12);
    expect(rouge.low).toBeGreaterThan(0);
    expect(rouge.outcome).toBe("better");
    const mae = comparison.metrics.find((metric) => metric.group === "match_score" && metric.metric === "mae")!;
    // Every resample of the three errors (0.4, 0.2, 0.1) has the constant worse: the interval lies within [-0.4, -0.1].
    expect(mae).toMatchObject({ better: "lower", outcome: "better" });
    expect(mae.low).toBeGreaterThanOrEqual(-0.4 - 1e-12);
    expect(mae.high).toBeLessThanOrEqual(-0.1 + 1e-12);
    expect(comparison.worsened).toBe(0);
    expect(comparison.verdict).toMatch(/^oracle is better than constant on 8 examples/);
    // In plain words, task by task, the most telling metric first: constant's output is valid JSON, so validity is
    // unclear and field F1 leads (other's value → this one's, then the interval of the difference).
    expect(comparison.summary[0]).toMatch(/^oracle is better than constant on resume parsing: field F1 0\.00 → 1\.00 \[\+1\.00, \+1\.00\]; /);
    expect(comparison.summary.find((line) => line.includes("on match scoring"))).toMatch(/^oracle is better than constant on match scoring: MAE 0\.23 → 0\.00 \[−0\.\d\d, −0\.\d\d\]/);
    expect(comparison.summary.at(-1)).toMatch(/^oracle is better than constant on all tasks together: /);
  });

  it("runs the TF-IDF baseline on the match-score examples only, and ranks the strong match first", () => {
    const baseline = report.systems[2]!;
    expect(baseline.answered).toBe(3);
    expect(Object.keys(baseline.metrics)).toEqual(["overall", "match_score"]);
    const scores = records.filter((record) => record.task === "match_score").map((record) => JSON.parse(record.outputs["baseline-tfidf"]!.text).match_score as number);
    expect(scores[0]).toBeGreaterThan(scores[1]!); // Lena (forecasting, Python) over Omar (a nurse) for the forecasting job
    expect(report.comparisons[1]).toMatchObject({ against: "baseline-tfidf", examples: 3 });
  });

  it("writes report.json, report.md, predictions.jsonl and an HTML report whose charts render in Chromium", async () => {
    const withCurve = structuredClone(report);
    withCurve.systems[0]!.training = {
      loss_curve: [
        { step: 5, loss: 3.2 },
        { step: 10, loss: 2.5 },
        { step: 10, eval_loss: 2.7 },
        { step: 15, loss: 2.1 },
      ],
      metrics: null,
    };
    const files = writeReport(withCurve, records, path.join(dir, "report"), { prompts: config.prompts });
    const json = JSON.parse(fs.readFileSync(files.json, "utf8")) as EvalReport;
    expect(json.systems[1]!.metrics.match_score!.pearson).toBeNull(); // NaN is written as null
    const markdown = fs.readFileSync(files.markdown, "utf8");
    expect(markdown).toContain("| rouge_l | 1 |");
    // The verdict in words first; the examples with their JSON fields marked against the reference.
    expect(markdown.indexOf(`- ${report.comparisons[0]!.summary[0]}`)).toBeGreaterThan(0);
    expect(markdown.indexOf(`- ${report.comparisons[0]!.summary[0]}`)).toBeLessThan(markdown.indexOf("## overall"));
    // The input: the query, then the start of each context passage.
    expect(markdown).toContain("### resume parsing — test line 1\n\nInput:\n\n```text\nParse this resume into the ATS JSON schema.\n\nLena Hoffmann\n");
    expect(markdown).toContain("| name | Lena Hoffmann | Lena Hoffmann ✓ | ∅ |");
    expect(markdown).toContain("| match_score | 0.9 | 0.9 ✓ | 0.5 ≠ | 0.");
    expect(fs.readFileSync(files.predictions, "utf8").trim().split("\n")).toHaveLength(8);

    const browser = await puppeteer.launch({
      executablePath: chromiumPath(),
      args: ["--no-sandbox", "--headless=new"],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(String(error)));
      page.on("requestfailed", (request) => problems.push(`request ${request.url()}`));
      await page.goto(`file://${files.html}`, { waitUntil: "load" });
      // Runs in the page (a string, so this file needs no DOM types): what the browser actually laid out.
      const drawn = (await page.evaluate(`(() => {
        const size = (selector) => [...document.querySelectorAll(selector)].map((element) => element.getBoundingClientRect()).filter((box) => box.width > 0 && box.height > 0).length;
        const line = document.querySelector("svg.loss polyline");
        return {
          barCharts: document.querySelectorAll("svg.chart.bars").length,
          bars: size("svg.chart.bars rect.bar"),
          whiskers: size("svg.chart.bars path.whisker"),
          lossPoints: line?.getAttribute("points")?.split(" ").length ?? 0,
          lossWidth: line?.getBoundingClientRect().width ?? 0,
          verdicts: document.querySelectorAll(".verdict").length,
          verdictLines: [...document.querySelectorAll(".verdict li")].map((item) => item.textContent),
          firstHeading: document.querySelector("body > :not(h1)")?.className,
          examples: size("section.example"),
          fieldCells: Object.fromEntries(["same", "different", "missing", "extra"].map((status) => [status, size("section.example td.field." + status)])),
          sideBySide: size("section.example .side .output"),
          scripts: document.querySelectorAll("script").length,
        };
      })()`)) as {
        barCharts: number;
        bars: number;
        whiskers: number;
        lossPoints: number;
        lossWidth: number;
        verdicts: number;
        verdictLines: string[];
        firstHeading: string;
        examples: number;
        fieldCells: Record<string, number>;
        sideBySide: number;
        scripts: number;
      };
      expect(problems).toEqual([]);
      expect(drawn.barCharts).toBe(5); // overall and the four tasks
      expect(drawn.bars).toBeGreaterThan(20);
      expect(drawn.whiskers).toBeGreaterThan(0);
      expect(drawn.lossPoints).toBe(3);
      expect(drawn.lossWidth).toBeGreaterThan(100);
      expect(drawn.verdicts).toBe(2);
      // The verdict in words comes first, before the settings and the charts.
      expect(drawn.firstHeading).toBe("verdict");
      expect(drawn.verdictLines).toEqual([...report.comparisons[0]!.summary, ...report.comparisons[1]!.summary]);
      expect(drawn.examples).toBe(7); // two per task: resume_parse 2, match_score 2 of 3, interview_question 2, resume_analysis 1
      // JSON answers field by field: the oracle's fields are the reference's; the constant {"match_score": 0.5} misses the
      // resume's fields, has one too many there, and a different score from the match-score references.
      expect(drawn.fieldCells.same).toBeGreaterThan(0);
      expect(drawn.fieldCells.missing).toBeGreaterThan(0);
      expect(drawn.fieldCells.extra).toBeGreaterThan(0);
      expect(drawn.fieldCells.different).toBeGreaterThan(0);
      // Prose answers side by side: the reference and the two systems for each of the 3 question and analysis examples.
      expect(drawn.sideBySide).toBe(9);
      expect(drawn.scripts).toBe(0);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe("evaluate through a model runner (per-task token limits, answers cut at the limit, JSON schema)", () => {
  /**
   * A model that answers with the reference, one character a token: cut at the call's limit (the runner then
   * does not say why it stopped, as the Python worker does not), and under a JSON schema ends where its JSON
   * does (as node-llama-cpp's grammars do). It records each generate call and each score call.
   */
  function referenceRunner() {
    const reference = new Map(examples.map((example) => [example.prompt, example.completion]));
    const calls: Array<{ prompts: number; maxNewTokens: number; schema: string | null }> = [];
    let scored = 0;
    const runner: ModelRunner = {
      async generate(_ref, prompts: string[], options: GenerateOptions, onProgress) {
        calls.push({ prompts: prompts.length, maxNewTokens: options.maxNewTokens, schema: options.jsonSchema ? JSON.stringify(options.jsonSchema) : null });
        return prompts.map((prompt, i): Generation => {
          const answer = reference.get(prompt)!;
          onProgress?.(i + 1);
          if (options.jsonSchema) return { text: answer, tokens: answer.length, seconds: 0.01, stoppedBy: "eos" };
          const text = answer.slice(0, options.maxNewTokens);
          return { text, tokens: text.length, seconds: 0.01 };
        });
      },
      async score(_ref, prompts: string[]) {
        scored += 1;
        return prompts.map(() => ({ loss: 1, tokens: 5 }));
      },
      engine: () => "node-llama-cpp",
    };
    return { runner, calls, scored: () => scored };
  }

  it("generates each group of equal limits in one call, keeps the order, and scores what a cut answer did write", async () => {
    const { runner, calls, scored } = referenceRunner();
    const events: Array<[string, number, number]> = [];
    let label = "";
    let total = 0;
    const progress: ProgressSink = {
      start: (count, name) => {
        [label, total] = [name, count];
        events.push([label, 0, total]);
      },
      update: (done) => events.push([label, done, total]),
      stop: () => undefined,
    };
    const model = { model: "models/v2", base: "models/smollm2" };
    const { report, examples: records } = await evaluate({
      config,
      testFile: path.join(dir, "test.jsonl"),
      examples,
      systems: [
        { name: "tuned", role: "model", model },
        { name: "tuned+schema", role: "model", model, jsonSchema: true },
      ],
      runner,
      embedder,
      // Lena's resume JSON stops after her name ('{"name":"Lena Hoffmann",'), Omar's after his name and an 'e'.
      maxNewTokens: 400,
      maxNewTokensByTask: { resume_parse: 24, match_score: 100 },
      seed: 7,
      bootstrapSamples: 200,
      progress,
    });
    const schemaOf = (task: string) => JSON.stringify(taskAnswerJsonSchema(task));
    // Tasks in test order: resume_parse ×2, match_score ×3, interview_question ×2, resume_analysis ×1.
    expect(calls).toEqual([
      { prompts: 2, maxNewTokens: 24, schema: null },
      { prompts: 3, maxNewTokens: 100, schema: null },
      { prompts: 3, maxNewTokens: 400, schema: null },
      { prompts: 2, maxNewTokens: 24, schema: schemaOf("resume_parse") },
      { prompts: 3, maxNewTokens: 100, schema: schemaOf("match_score") },
      { prompts: 3, maxNewTokens: 400, schema: null },
    ]);
    expect(scored()).toBe(1); // the +schema system is the same model: its reference losses are not computed twice
    const limits = report.settings.max_new_tokens_by_task;
    expect(records.map((record) => record.outputs.tuned!.text)).toEqual(examples.map((example) => example.completion.slice(0, limits[example.task])));
    expect(report.settings).toMatchObject({ max_new_tokens: 400, max_new_tokens_by_task: { resume_parse: 24, match_score: 100, interview_question: 400, resume_analysis: 400 }, json_schema: true });

    const [tuned, constrained] = report.systems;
    expect(constrained).toMatchObject({ name: "tuned+schema", json_schema: true });
    // Both resume answers were cut: invalid, so the strict fields are all missed; repaired, the two names are right
    // (tp 2; Lena's email and 4 skills and Omar's email missed: fn 6): P 1, R 1/4, F1 0.4.
    expect(tuned!.metrics.resume_parse).toMatchObject({ hit_token_limit: 1, json_validity: 0, field_f1: 0, field_precision_repaired: 1, field_recall_repaired: 0.25 });
    expect(tuned!.metrics.resume_parse!.field_f1_repaired).toBeCloseTo(0.4, 12);
    expect(tuned!.metrics.match_score).toMatchObject({ hit_token_limit: 0, mae: 0 });
    expect(tuned!.metrics.overall!.hit_token_limit).toBe(0.25);
    expect(constrained!.metrics.resume_parse).toMatchObject({ hit_token_limit: 0, json_validity: 1, field_f1: 1, field_f1_repaired: 1 });

    // The comparison the schema makes: tuned+schema − tuned, in plain words with every counted metric's interval.
    const comparison = report.comparisons[0]!;
    expect(comparison).toMatchObject({ system: "tuned+schema", against: "tuned" });
    const cut = comparison.metrics.find((metric) => metric.group === "resume_parse" && metric.metric === "hit_token_limit")!;
    expect(cut).toMatchObject({ value: 0, other: 1, delta: -1, low: -1, high: -1, better: "lower", outcome: "better" });
    expect(comparison.metrics.find((metric) => metric.group === "resume_parse" && metric.metric === "field_f1_repaired")).toMatchObject({ delta: 0.6, outcome: "better" });
    expect(comparison.summary[0]).toBe(
      "tuned+schema is better than tuned on resume parsing: JSON validity 0.00 → 1.00 [+1.00, +1.00]; field F1 0.00 → 1.00 [+1.00, +1.00]; answers cut at the token limit 1.00 → 0.00 [−1.00, −1.00] (and 7 more metrics)",
    );

    // Progress: the generate bar counts across the calls up to every prompt; the bootstrap has one too.
    const generate = events.filter(([name]) => name === "tuned generate").map(([, done]) => done);
    expect(generate.at(-1)).toBe(8);
    expect(generate).toEqual([...generate].sort((a, b) => a - b));
    expect(events).toContainEqual(["bootstrap", 0, (2 + 1) * 5]);
    expect(events.filter(([name]) => name === "bootstrap").at(-1)).toEqual(["bootstrap", 15, 15]);
  }, 120_000);

  it("refuses --json-schema before generating anything when a model runs on the worker", async () => {
    const { runner, calls } = referenceRunner();
    runner.engine = () => "worker";
    const run = evaluate({
      config,
      testFile: path.join(dir, "test.jsonl"),
      examples,
      systems: [
        { name: "tuned", role: "model", model: { model: "models/v2" } },
        { name: "tuned+schema", role: "model", model: { model: "models/v2" }, jsonSchema: true },
      ],
      runner,
      embedder,
      maxNewTokens: 64,
      seed: 7,
      bootstrapSamples: 10,
    });
    await expect(run).rejects.toMatchObject({ message: "--json-schema: models/v2 generates through the worker, which cannot constrain answers to a JSON schema" });
    expect(calls).toEqual([]);
  });
});

describe("predictions files", () => {
  it("names a missing and an extra prompt", () => {
    const file = path.join(dir, "partial.jsonl");
    const rows = examples.slice(1).map((example) => ({ prompt: example.prompt, prediction: "x" }));
    rows.push({ prompt: "a prompt from another test set", prediction: "y" });
    fs.writeFileSync(file, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
    let caught: { message: string; details: string[] } | undefined;
    try {
      matchPredictions(file, examples);
    } catch (error) {
      caught = error as typeof caught;
    }
    expect(caught?.message).toContain("does not match the test data one to one (2 problem(s))");
    expect(caught?.details[0]).toMatch(/^test line 1: no prediction for the prompt "### Context: Lena Hoffmann/);
    expect(caught?.details[1]).toBe(`${file}:8: prompt: no test example has the prompt "a prompt from another test set"`);
  });

  it("accepts rows for examples left out by --limit", () => {
    const file = path.join(dir, "all.jsonl");
    fs.writeFileSync(file, examples.map((example) => JSON.stringify({ prompt: example.prompt, prediction: example.completion })).join("\n") + "\n");
    expect(matchPredictions(file, examples.slice(0, 3), { allowExtra: true }).map((row) => row.prediction)).toEqual(examples.slice(0, 3).map((example) => example.completion));
    expect(() => matchPredictions(file, examples.slice(0, 3))).toThrow(/5 problem/);
  });

  it("names a line without a prediction field", () => {
    const file = path.join(dir, "bad.jsonl");
    fs.writeFileSync(file, `${JSON.stringify({ prompt: examples[0]!.prompt, prediction: "x" })}\n${JSON.stringify({ prompt: examples[1]!.prompt, output: "y" })}\n`);
    expect(() => matchPredictions(file, examples)).toThrow(/has 2 problem/);
  });
});
