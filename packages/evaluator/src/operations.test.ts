import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { ExitCode, loadConfig, workdirPaths, type OperationEvent } from "@ats-lora/core";
import { evaluateModels } from "./evaluate-models.js";
import type { ModelRunner } from "./evaluate.js";
import { sampleExamples } from "./test-support.js";

// evaluateModels on a small held-out file, a predictions file and the TF-IDF baseline (the real embedder, no
// model): it reports through events and its result only, never on stdout or stderr.
const config = loadConfig({ env: {} });
const examples = sampleExamples(config);
const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-eval-op-"));
const context = { paths: workdirPaths(workdir), config };
const testFile = path.join(workdir, "test.jsonl");
fs.writeFileSync(testFile, examples.map(({ line: _line, ...row }) => JSON.stringify(row)).join("\n") + "\n");
const predictions = path.join(workdir, "api-outputs.jsonl");
fs.writeFileSync(predictions, examples.map((example) => JSON.stringify({ prompt: example.prompt, prediction: example.completion })).join("\n") + "\n");

let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});

describe("evaluateModels", () => {
  it("scores a predictions file and the TF-IDF baseline on the first examples, writing the report, silently", async () => {
    const events: OperationEvent[] = [];
    const outDir = path.join(workdir, "eval", "op");
    const result = await evaluateModels(
      {
        systems: [
          { name: "api-outputs", role: "predictions", file: predictions },
          { name: "baseline-tfidf", role: "baseline", method: "tfidf" },
        ],
        testData: testFile,
        limit: 5,
        outDir,
        metadata: () => undefined,
      },
      context,
      { onEvent: (event) => events.push(event) },
    );
    expect(result.test_data).toMatchObject({ file: testFile, examples: 5 });
    expect(result.systems.map((system) => [system.name, system.role])).toEqual([
      ["api-outputs", "predictions"],
      ["baseline-tfidf", "baseline"],
    ]);
    expect(result.systems[0]!.metrics.overall).toMatchObject({ n: 5, rouge_l: 1, exact_match: 1 });
    expect(result.comparisons[0]).toMatchObject({ system: "api-outputs", against: "baseline-tfidf", examples: 3 });
    expect(result.report_files.json).toBe(path.join(outDir, "report.json"));
    expect(JSON.parse(fs.readFileSync(result.report_files.json, "utf8"))).toEqual(JSON.parse(JSON.stringify(result, (key, value) => (key === "report_files" ? undefined : value))));
    expect(events).toContainEqual({ type: "stage", message: "scoring the outputs" });
    expect(events).toContainEqual(expect.objectContaining({ type: "progress", stage: "embed", unit: "count" }));
  }, 120_000);

  it("asks the runner to stop when the signal aborts, and rejects with the runner's error (exit 130), writing no report", async () => {
    const controller = new AbortController();
    let cancelled = false;
    const runner: ModelRunner = {
      generate: () =>
        new Promise((_resolve, reject) => {
          // Generation runs until the runner is cancelled, as the worker's does.
          runner.cancel = () => {
            cancelled = true;
            reject(Object.assign(new Error("generation cancelled"), { exitCode: ExitCode.interrupted }));
          };
          controller.abort();
        }),
      score: async () => [],
    };
    const outDir = path.join(workdir, "eval", "interrupted");
    const run = evaluateModels({ systems: [{ name: "tuned", role: "model", model: { model: "some-model" } }], testData: testFile, outDir, runner }, context, {
      signal: controller.signal,
    });
    await expect(run).rejects.toMatchObject({ message: "generation cancelled", exitCode: ExitCode.interrupted });
    expect(cancelled).toBe(true);
    expect(fs.existsSync(path.join(outDir, "report.json"))).toBe(false);
  }, 120_000);

  it("generates with the config's limit per task unless --max-new-tokens sets every one, and adds +schema systems under --json-schema", async () => {
    const calls: Array<{ prompts: number; maxNewTokens: number; schema: boolean }> = [];
    const runner: ModelRunner = {
      generate: async (_ref, prompts, options) => {
        calls.push({ prompts: prompts.length, maxNewTokens: options.maxNewTokens, schema: options.jsonSchema !== undefined });
        return prompts.map(() => ({ text: '{"match_score": 0.5}', tokens: 9, seconds: 0.01 }));
      },
      score: async (_ref, prompts) => prompts.map(() => ({ loss: 1, tokens: 3 })),
    };
    const input = { systems: [{ name: "tuned", role: "model" as const, model: { model: "some-model" } }], testData: testFile, limit: 5, runner, metadata: () => undefined };
    // The first five test rows: resume_parse ×2, match_score ×3.
    const byTask = await evaluateModels({ ...input, outDir: path.join(workdir, "eval", "by-task") }, context);
    expect(config.eval.max_new_tokens_by_task).toMatchObject({ resume_parse: 768, match_score: 256 });
    expect(calls.splice(0)).toEqual([
      { prompts: 2, maxNewTokens: 768, schema: false },
      { prompts: 3, maxNewTokens: 256, schema: false },
    ]);
    expect(byTask.settings.max_new_tokens_by_task).toEqual({ resume_parse: 768, match_score: 256 });
    const overridden = await evaluateModels({ ...input, maxNewTokens: 50, outDir: path.join(workdir, "eval", "override") }, context);
    expect(calls.splice(0)).toEqual([{ prompts: 5, maxNewTokens: 50, schema: false }]);
    expect(overridden.settings).toMatchObject({ max_new_tokens: 50, max_new_tokens_by_task: { resume_parse: 50, match_score: 50 }, json_schema: false });
    const constrained = await evaluateModels({ ...input, jsonSchema: true, outDir: path.join(workdir, "eval", "schema") }, context);
    expect(constrained.systems.map((system) => system.name)).toEqual(["tuned", "tuned+schema"]);
    expect(calls.splice(0).map((call) => call.schema)).toEqual([false, false, true, true]);
    expect(constrained.comparisons.map((comparison) => `${comparison.system} − ${comparison.against}`)).toEqual(["tuned+schema − tuned"]);
  }, 120_000);

  it("stops before any work when the signal has already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const run = evaluateModels({ systems: [{ name: "baseline-tfidf", role: "baseline", method: "tfidf" }], testData: testFile }, context, { signal: controller.signal });
    await expect(run).rejects.toMatchObject({ message: "evaluation interrupted", exitCode: ExitCode.interrupted });
  });
});
