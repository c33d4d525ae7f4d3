import fs from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { createRunContext, InputError, nonNegativeInt, positiveInt, type AtsConfig, type GlobalOptions } from "@ats-lora/core";
import { BASELINES } from "./baseline.js";
import type { ModelRunner, PassageRetriever } from "./evaluate.js";
import type { MetadataLookup } from "./test-data.js";

/** What the cli wires in, so this package depends on neither the trainer, the rag store nor the feedback store. */
export interface EvalWiring {
  openRunner?: (logFile: string) => Promise<{ runner: ModelRunner; close(): Promise<void> }>;
  openRetriever?: (store: string, config: AtsConfig) => Promise<{ retriever: PassageRetriever; close(): Promise<void> }>;
  /** Interaction metadata by id from the workdir's feedback store (a follow-up's vague part); undefined without a store. */
  openMetadata?: (storeFile: string) => Promise<{ lookup: MetadataLookup; close(): void } | undefined>;
}

interface EvalOptions {
  model?: string;
  base?: string;
  compare?: string;
  testData?: string;
  rag?: boolean | string;
  maxNewTokens?: number;
  out?: string;
  predictions?: string;
  baseline?: string[];
  limit?: number;
  seed?: number;
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
    .option("--max-new-tokens <n>", "generation length limit (eval.max_new_tokens)", positiveInt)
    .option("--out <dir>", "where the report goes (default: eval/<name>-<time> under the workdir)")
    .option("--predictions <file>", "score outputs produced elsewhere: JSONL of {prompt, prediction}, one per test example")
    .addOption(new Option("--baseline <method>", "add a match-score baseline: tfidf (section-weighted TF-IDF cosine) or embedding (repeatable)").argParser(baselineMethods))
    .option("--limit <n>", "only the first n test examples (a quick look; intervals get wide)", positiveInt)
    .option("--seed <n>", "generation and bootstrap seed (training.seed)", nonNegativeInt)
    .addHelpText(
      "after",
      `
Generation is greedy through the Python worker; every metric is computed from the outputs: semantic
similarity (the embedder), ROUGE-L, exact match, loss and perplexity of the reference, latency, tokens/s; JSON
validity and field P/R/F1 for resume_parse; relevance, specificity and follow-up focus for interview_question;
MAE, RMSE, R², Pearson, Spearman, ±0.2 accuracy and 0.5-threshold P/R/F1 for match_score. Comparisons use a
paired bootstrap (eval.bootstrap_samples) over the same examples.

Examples:
  $ ats-lora eval --model models/ats_lora_v1 --test_data feedback_db/test_set.jsonl
  $ ats-lora eval --model models/v2 --base models/tiny --json
  $ ats-lora eval --model models/v2 --compare models/v1 --baseline tfidf
  $ ats-lora --workdir W eval --predictions api-outputs.jsonl --test_data W/feedback_db/training_pairs/sft/test.jsonl --json`,
    )
    .action(async (options: EvalOptions, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const config = context.config;
      const [{ runEvaluation }, { renderSummary }, { readTestData, resolveTestFile, attachMetadata }] = await Promise.all([
        import("./run.js"),
        import("./report.js"),
        import("./test-data.js"),
      ]);
      const systems = systemsFrom(options);
      if (systems.length === 0) {
        throw new InputError("nothing to evaluate", { hint: "pass --model DIR_OR_ID, --predictions FILE or --baseline tfidf|embedding" });
      }
      const testFile = resolveTestFile(options.testData ?? context.paths.trainingPairs);
      let examples = readTestData(testFile);
      if (options.limit !== undefined) examples = examples.slice(0, options.limit);
      const metadata = await wiring.openMetadata?.(context.paths.feedbackSqlite);
      try {
        if (metadata) attachMetadata(examples, metadata.lookup);
      } finally {
        metadata?.close();
      }

      const outDir = options.out ?? path.join(context.paths.workdir, "eval", `${systems[0]!.name}-${stamp(new Date())}`);
      fs.mkdirSync(outDir, { recursive: true });
      const needsModel = systems.some((system) => "model" in system && system.model !== undefined);
      if (needsModel && !wiring.openRunner) throw new InputError("evaluating a model needs the Python worker, which this program does not include");
      if (options.rag && !wiring.openRetriever) throw new InputError("--rag needs the knowledge store, which this program does not include");
      let knowledge: Awaited<ReturnType<NonNullable<EvalWiring["openRetriever"]>>> | undefined;
      let worker: Awaited<ReturnType<NonNullable<EvalWiring["openRunner"]>>> | undefined;
      // Ctrl-C stops the worker's generation cleanly (exit 130) instead of leaving it running.
      const onSigint = () => {
        context.reporter.info("stopping: asking the worker to stop (Ctrl-C again to force)");
        process.off("SIGINT", onSigint);
        worker?.runner.cancel?.();
      };
      try {
        if (options.rag) knowledge = await wiring.openRetriever!(options.rag === true ? context.paths.vectorStore : options.rag, config);
        if (needsModel) {
          worker = await wiring.openRunner!(path.join(outDir, "worker.log"));
          process.on("SIGINT", onSigint);
        }
        const { report, files } = await runEvaluation({
          config,
          testFile,
          examples,
          systems,
          runner: worker?.runner,
          outDir,
          embeddingCacheFile: path.join(context.paths.cache, "embeddings.sqlite"),
          retriever: knowledge?.retriever,
          maxNewTokens: options.maxNewTokens ?? config.eval.max_new_tokens,
          seed: options.seed ?? config.training.seed,
          bootstrapSamples: config.eval.bootstrap_samples,
          partialTestData: options.limit !== undefined,
          progress: context.progress(),
          onStage: (message) => context.reporter.info(message),
        });
        context.reporter.result({ ...report, report_files: files }, () => `${renderSummary(report)}\n\nreport: ${files.html}\n        ${files.markdown}, ${files.json}, ${files.predictions}`);
      } finally {
        process.off("SIGINT", onSigint);
        await worker?.close();
        await knowledge?.close();
      }
    });
}

type Spec = import("./evaluate.js").SystemSpec;

/** The systems the flags name, the evaluated one first. */
export function systemsFrom(options: Pick<EvalOptions, "model" | "base" | "compare" | "predictions" | "baseline">): Spec[] {
  const systems: Spec[] = [];
  const taken = new Set<string>();
  const unique = (name: string) => {
    let candidate = name;
    for (let n = 2; taken.has(candidate); n += 1) candidate = `${name}-${n}`;
    taken.add(candidate);
    return candidate;
  };
  if (options.predictions) {
    // With --predictions, --model says what produced them (an API model's name, or a local model, which then also
    // scores the references' loss).
    const local = options.model !== undefined && isLocalModel(options.model);
    systems.push({
      name: unique(options.model ? modelName(options.model) : modelName(options.predictions).replace(/\.jsonl?$/, "")),
      role: "predictions",
      file: options.predictions,
      ...(local ? { model: { model: options.model!, base: options.base ?? null } } : {}),
    });
  } else if (options.model) {
    systems.push({ name: unique(options.base ? "tuned" : modelName(options.model)), role: "model", model: { model: options.model, base: options.base ?? null } });
  }
  if (options.base && systems.length > 0) systems.push({ name: unique("base"), role: "base", model: { model: options.base } });
  if (options.compare) systems.push({ name: unique(modelName(options.compare)), role: "compare", model: { model: options.compare, base: options.base ?? null } });
  for (const method of options.baseline ?? []) systems.push({ name: unique(`baseline-${method}`), role: "baseline", method: method as "tfidf" | "embedding" });
  if (options.base && systems.length === 1) throw new InputError("--base compares a model with its base: pass --model too");
  return systems;
}

function baselineMethods(value: string, previous: string[] = []): string[] {
  if (!(BASELINES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected ${BASELINES.join(" or ")}`);
  return [...previous, value];
}

/** A folder with a model or an adapter in it (config.json or adapter_config.json). */
function isLocalModel(model: string): boolean {
  return fs.existsSync(path.join(model, "config.json")) || fs.existsSync(path.join(model, "adapter_config.json"));
}

function modelName(model: string): string {
  return path.basename(path.resolve(model)) || model;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}
