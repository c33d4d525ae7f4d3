import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "@ats-lora/core";
import { Embedder } from "@ats-lora/embeddings";
import { evaluate } from "./evaluate.js";
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

/** Chromium or Chrome on this machine ($CHROMIUM_PATH first); the report test needs a real browser. */
function chromium(): string {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"];
  const found = candidates.find((candidate): candidate is string => !!candidate && fs.existsSync(candidate));
  if (!found) throw new Error("no Chromium or Chrome found to render report.html: apt-get install chromium, or set CHROMIUM_PATH");
  return found;
}

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
    // int8 activations are quantized per batch, so the same pair embedded in another batch differs in the third decimal.
    expect(records[5]!.outputs.oracle!.scores.relevance).toBeCloseTo(cosine, 2);
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
    const files = writeReport(withCurve, records, path.join(dir, "report"));
    const json = JSON.parse(fs.readFileSync(files.json, "utf8")) as EvalReport;
    expect(json.systems[1]!.metrics.match_score!.pearson).toBeNull(); // NaN is written as null
    expect(fs.readFileSync(files.markdown, "utf8")).toContain("| rouge_l | 1 |");
    expect(fs.readFileSync(files.predictions, "utf8").trim().split("\n")).toHaveLength(8);

    const browser = await puppeteer.launch({
      executablePath: chromium(),
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
          examples: document.querySelectorAll("details.example").length,
        };
      })()`)) as { barCharts: number; bars: number; whiskers: number; lossPoints: number; lossWidth: number; verdicts: number; examples: number };
      expect(problems).toEqual([]);
      expect(drawn.barCharts).toBe(5); // overall and the four tasks
      expect(drawn.bars).toBeGreaterThan(20);
      expect(drawn.whiskers).toBeGreaterThan(0);
      expect(drawn.lossPoints).toBe(3);
      expect(drawn.lossWidth).toBeGreaterThan(100);
      expect(drawn.verdicts).toBe(2);
      expect(drawn.examples).toBe(7); // two per task: resume_parse 2, match_score 2 of 3, interview_question 2, resume_analysis 1
    } finally {
      await browser.close();
    }
  }, 60_000);
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
