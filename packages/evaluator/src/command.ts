import { Command, InvalidArgumentError, Option } from "commander";
import { createRunContext, EVAL_ENGINES, ExitCode, nonNegativeInt, positiveInt, renderEvents, withCtrlC, type EvalEngine, type GlobalOptions } from "@ats-lora/core";
import { BASELINES } from "./baseline.js";
import { parseRequirement, productionToCompare, type Requirement } from "./gate.js";
import type { EvalWiring } from "./evaluate-models.js";
import type { SystemFlags } from "./systems.js";

export type { EvalWiring } from "./evaluate-models.js";
export { matchCommand } from "./match-command.js";

interface EvalOptions extends SystemFlags {
  testData?: string;
  rag?: boolean | string;
  maxNewTokens?: number;
  jsonSchema?: boolean;
  out?: string;
  limit?: number;
  seed?: number;
  engine?: EvalEngine;
  gate?: boolean;
  require?: Requirement[];
}

/** `ats-lora eval`: task metrics of a model, adapter or predictions file, compared with a base, another version or a baseline. */
export function evalCommand(wiring: EvalWiring = {}): Command {
  return new Command("eval")
    .description("measure a model or adapter on held-out data with task metrics; compare versions with confidence intervals")
    .option("--model <dir_or_id>", "the model or adapter folder to evaluate; with --predictions, what produced them (a local model also scores the references' loss)")
    .option("--base <dir_or_id>", "compare with this base model (and load an adapter --model on it)")
    .option("--compare <dir>", "compare with another version (model or adapter folder)")
    .option("--test-data <file_or_dir>", "JSONL of {prompt, completion, task} (default: build-db's sft/test.jsonl)")
    .option("--rag [store]", "add the knowledge store's passages to each prompt (default store: vector_store under the workdir)")
    .option("--max-new-tokens <n>", "generation length limit of every task (default: eval.max_new_tokens_by_task, else eval.max_new_tokens)", positiveInt)
    .option("--json-schema", "also evaluate each model with its JSON answers (resume_parse, match_score) constrained to their schema, as <name>+schema; GGUF models only (eval.json_schema)")
    .option("--out <dir>", "where the report goes (default: eval/<name>-<time> under the workdir)")
    .option("--predictions <file>", "score outputs produced elsewhere: JSONL of {prompt, prediction}, one per test example")
    .addOption(new Option("--baseline <method>", "add a match-score baseline: tfidf (section-weighted TF-IDF cosine of a trained matcher) or embedding (repeatable)").argParser(baselineMethods))
    .option("--matcher <name_or_dir>", "the TF-IDF baseline's matcher (ats-lora match train); default the newest under models/, else one fitted on the training rows beside the test data")
    .option("--limit <n>", "only the first n test examples (a quick look; intervals get wide)", positiveInt)
    .option("--seed <n>", "generation and bootstrap seed (training.seed)", nonNegativeInt)
    .option("--gate", "fail (exit 3) when the model is clearly worse than what it is compared with (without --compare: the production adapter) on any counted metric, or misses a --require")
    .option("--require <metric_op_value>", "with --gate (implied): a threshold the model must meet, e.g. 'resume_parse.json_validity>=0.95' (repeatable)", requirements)
    .addOption(new Option("--engine <engine>", "what generates: auto (node-llama-cpp when the base is a GGUF, else the Python worker), llama or worker (eval.engine)").choices(EVAL_ENGINES))
    .addHelpText(
      "after",
      `
Generation is greedy, through node-llama-cpp when the base model is a GGUF (an adapter is exported as a LoRA
GGUF once), else through the Python worker (--engine picks); every metric is computed from the outputs: semantic
similarity (the embedder), ROUGE-L, exact match, loss and perplexity of the reference, latency, tokens/s; JSON
validity and field P/R/F1 for resume_parse (strict, and from a repaired parse of a cut-off answer); the share of
answers cut at the token limit; relevance, specificity and follow-up focus for interview_question;
MAE, RMSE, R², Pearson, Spearman, ±0.2 accuracy and 0.5-threshold P/R/F1 for match_score. Comparisons use a
paired bootstrap (eval.bootstrap_samples) over the same examples.

Examples:
  $ ats-lora eval --model models/ats_lora_v1 --test_data feedback_db/test_set.jsonl
  $ ats-lora eval --model models/v2 --base models/tiny --json
  $ ats-lora eval --model models/v2 --compare models/v1 --baseline tfidf
  $ ats-lora eval --model models/v2 --base models/smollm2-135m-instruct --json-schema
  $ ats-lora --workdir W eval --predictions api-outputs.jsonl --test_data W/feedback_db/training_pairs/sft/test.jsonl --json
  $ ats-lora eval --model models/v3 --compare models/v2 --gate --require 'resume_parse.json_validity>=0.95'

With --gate the exit code is 3 when the model is clearly worse (a 95% interval below zero) on any counted
metric, or misses a --require; 0 when it is better or not clearly different. The result's "gate" names each
failed metric.`,
    )
    .action(async (options: EvalOptions, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const [{ evaluateModels }, { renderSummary }, { needsModel, systemsFrom }] = await Promise.all([
        import("./evaluate-models.js"),
        import("./report.js"),
        import("./systems.js"),
      ]);
      const gating = options.gate === true || options.require !== undefined;
      // The gate's default opponent: the adapter in production.
      const compare = options.compare ?? (gating ? productionToCompare(options.model, context) : undefined);
      const systems = systemsFrom({ ...options, compare });
      const gate = gating ? { requirements: options.require ?? [] } : undefined;
      const input = { ...wiring, systems, testData: options.testData, limit: options.limit, rag: options.rag, outDir: options.out, maxNewTokens: options.maxNewTokens, jsonSchema: options.jsonSchema, seed: options.seed, engine: options.engine, gate };
      const events = renderEvents(context);
      const stopping = systems.some(needsModel) ? "stopping: asking the worker to stop (Ctrl-C again to force)" : "stopping (Ctrl-C again to force)";
      const result = await withCtrlC((signal) => evaluateModels(input, context, { signal, onEvent: events.onEvent }), () => context.reporter.info(stopping)).finally(events.done);
      const files = result.report_files;
      const gateLines = result.gate === undefined ? "" : result.gate.passed ? `\n\ngate: passed (${result.gate.system} against ${result.gate.against.join(", ") || "its thresholds"})` : `\n\ngate: FAILED\n${result.gate.summary.map((line) => `  - ${line}`).join("\n")}`;
      const tracked = result.mlflow ? `\nMLflow: ${result.mlflow.url}` : "";
      context.reporter.result(result, () => `${renderSummary(result)}${gateLines}\n\nreport: ${files.html}\n        ${files.markdown}, ${files.json}, ${files.predictions}${tracked}`);
      if (result.gate !== undefined && !result.gate.passed) process.exitCode = ExitCode.gateFailed;
    });
}

function requirements(value: string, previous: Requirement[] = []): Requirement[] {
  try {
    return [...previous, parseRequirement(value)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message.replace(/^--require /, "") + `; ${(error as { hint?: string }).hint ?? ""}`);
  }
}

function baselineMethods(value: string, previous: string[] = []): string[] {
  if (!(BASELINES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected ${BASELINES.join(" or ")}`);
  return [...previous, value];
}
