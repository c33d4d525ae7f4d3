import fs from "node:fs";
import path from "node:path";
import {
  InputError,
  progressEvents,
  readModelCard,
  throwIfAborted,
  writeAdapterReadme,
  writeModelCard,
  type AtsConfig,
  type EvalEngine,
  type MlflowRun,
  type OperationContext,
  type OperationOptions,
} from "@ats-lora/core";
import { Embedder } from "@ats-lora/embeddings";
import { evaluate, type ModelRunner, type PassageRetriever } from "./evaluate.js";
import { applyGate, type GateResult, type Requirement } from "./gate.js";
import { attachMetadata, readTestData, resolveTestFile, type EvalExample, type MetadataLookup } from "./held-out-set.js";
import { writeReport, type ReportFiles } from "./report.js";
import type { EvalReport } from "./report-types.js";
import { needsModel, withSchemaSystems, type SystemSpec } from "./systems.js";
import { trackEval } from "./tracking.js";

/** What the cli wires in, so this package depends on neither the trainer, the rag store nor the feedback store. */
export interface EvalWiring {
  /** The models' runner: node-llama-cpp for GGUF bases, the Python worker otherwise (engine picks; see eval.engine). */
  openRunner?: (logFile: string, options: { engine: EvalEngine; context: OperationContext }) => Promise<{ runner: ModelRunner; close(): Promise<void> }>;
  openRetriever?: (store: string, config: AtsConfig) => Promise<{ retriever: PassageRetriever; close(): Promise<void> }>;
  /** Interaction metadata by id from the workdir's feedback store (a follow-up's vague part); undefined without a store. */
  openMetadata?: (storeFile: string) => Promise<{ lookup: MetadataLookup; close(): void } | undefined>;
}

export interface EvaluateModelsInput extends EvalWiring {
  /** The first is the system under evaluation; every other one is compared against it (see systemsFrom). */
  systems: SystemSpec[];
  /** A JSONL file, build-db's output folder or a folder holding test.jsonl; default: the workdir's training pairs. */
  testData?: string;
  /** Only the first n examples. */
  limit?: number;
  /** Add the knowledge store's passages to each prompt: true for the workdir's vector_store, or a store folder. */
  rag?: boolean | string;
  /** Where the report goes; default eval/<first system>-<time> under the workdir. */
  outDir?: string;
  /** Every task's generation length limit; without it, eval.max_new_tokens_by_task and eval.max_new_tokens. */
  maxNewTokens?: number;
  /** Limits per task in place of eval.max_new_tokens_by_task (tasks not listed use eval.max_new_tokens); maxNewTokens overrides it. */
  maxNewTokensByTask?: Record<string, number>;
  /** Also generate each model's JSON tasks under their answer schema, as `<name>+schema` (default eval.json_schema). */
  jsonSchema?: boolean;
  /** Score each reference's loss under each model (perplexity); default eval.reference_loss. */
  referenceLoss?: boolean;
  /** What generates: auto (node-llama-cpp when the base is a GGUF), llama or worker; default eval.engine. */
  engine?: EvalEngine;
  /** Generation and bootstrap seed; default training.seed. */
  seed?: number;
  /** A runner already started, kept open; without one, openRunner starts one when a system needs a model. */
  runner?: ModelRunner;
  /** Interaction metadata by id; without it, openMetadata opens the workdir's feedback store. */
  metadata?: MetadataLookup;
  now?: Date;
  /** `--gate`: judge the first system against the others and these thresholds (see gate.ts). */
  gate?: { requirements: Requirement[] };
}

/** What `eval --json` prints: the report and where its files are, with --gate the gate's outcome, and the MLflow run where tracked. */
export type EvaluateModelsResult = EvalReport & { report_files: ReportFiles; gate?: GateResult; mlflow?: MlflowRun };

/**
 * Runs and scores each system on the held-out set and writes the report (report.json, .md, .html and
 * predictions.jsonl). Aborting the signal stops the runner's generate or score, which rejects (exit 130);
 * nothing is written then.
 */
export async function evaluateModels(input: EvaluateModelsInput, context: OperationContext, options: OperationOptions = {}): Promise<EvaluateModelsResult> {
  const { config, paths } = context;
  const { signal, onEvent } = options;
  const systems = (input.jsonSchema ?? config.eval.json_schema) ? withSchemaSystems(input.systems) : input.systems;
  if (systems.length === 0) {
    throw new InputError("nothing to evaluate", { hint: "pass --model DIR_OR_ID, --predictions FILE or --baseline tfidf|embedding" });
  }
  if (input.gate !== undefined && input.systems.length < 2 && input.gate.requirements.length === 0) {
    throw new InputError("--gate has nothing to judge the model against", { hint: "add --compare DIR, --base DIR or --baseline tfidf, or a threshold with --require 'task.metric>=value'" });
  }
  const testFile = resolveTestFile(input.testData ?? paths.trainingPairs);
  const examples = await heldOutExamples(testFile, input, paths.feedbackSqlite);

  const outDir = input.outDir ?? path.join(paths.workdir, "eval", `${systems[0]!.name}-${stamp(input.now ?? new Date())}`);
  fs.mkdirSync(outDir, { recursive: true });
  const modelNeeded = systems.some(needsModel) && !input.runner;
  if (modelNeeded && !input.openRunner) throw new InputError("evaluating a model needs a model runner (node-llama-cpp or the Python worker), which this program does not include");
  if (input.rag && !input.openRetriever) throw new InputError("--rag needs the knowledge store, which this program does not include");
  let knowledge: Awaited<ReturnType<NonNullable<EvalWiring["openRetriever"]>>> | undefined;
  let worker: Awaited<ReturnType<NonNullable<EvalWiring["openRunner"]>>> | undefined;
  let embedder: Embedder | undefined;
  const runner = () => input.runner ?? worker?.runner;
  // Aborting stops the worker's generation cleanly (exit 130) instead of leaving it running.
  const cancel = () => runner()?.cancel?.();
  signal?.addEventListener("abort", cancel);
  try {
    if (input.rag) knowledge = await input.openRetriever!(input.rag === true ? paths.vectorStore : input.rag, config);
    if (modelNeeded) worker = await input.openRunner!(path.join(outDir, "worker.log"), { engine: input.engine ?? config.eval.engine, context });
    throwIfAborted(signal, "evaluation", "nothing was written; run the command again to evaluate");
    embedder = await Embedder.fromConfig(config, { cacheFile: paths.embeddingCache });
    const { report, examples: records } = await evaluate({
      config,
      testFile,
      examples,
      systems,
      runner: runner(),
      embedder,
      retriever: knowledge?.retriever,
      // --max-new-tokens sets every task's limit; otherwise each task has its own where the config gives one.
      maxNewTokens: input.maxNewTokens ?? config.eval.max_new_tokens,
      maxNewTokensByTask: input.maxNewTokens !== undefined ? {} : (input.maxNewTokensByTask ?? config.eval.max_new_tokens_by_task),
      referenceLoss: input.referenceLoss ?? config.eval.reference_loss,
      seed: input.seed ?? config.training.seed,
      bootstrapSamples: config.eval.bootstrap_samples,
      partialTestData: input.limit !== undefined,
      progress: progressEvents(onEvent),
      onStage: (message) => onEvent?.({ type: "stage", message }),
      signal,
      now: input.now,
      modelsDir: paths.models,
    });
    const reportFiles = writeReport(report, records, outDir, { prompts: config.prompts });
    recordInAdapterCards(report, systems, reportFiles.json);
    const gate = input.gate === undefined ? undefined : applyGate(report, input.gate.requirements);
    const mlflow = await trackEval(config, report, reportFiles, gate, (message) => onEvent?.({ type: "warning", message }));
    return { ...report, report_files: reportFiles, ...(gate ? { gate } : {}), ...(mlflow ? { mlflow } : {}) };
  } finally {
    signal?.removeEventListener("abort", cancel);
    await embedder?.close();
    await worker?.close();
    await knowledge?.close();
  }
}

/** The held-out examples (the first `limit`), with the metadata of their source interactions. */
async function heldOutExamples(testFile: string, input: EvaluateModelsInput, feedbackStore: string): Promise<EvalExample[]> {
  const examples = readTestData(testFile).slice(0, input.limit);
  if (input.metadata) {
    attachMetadata(examples, input.metadata);
    return examples;
  }
  const store = await input.openMetadata?.(feedbackStore);
  try {
    if (store) attachMetadata(examples, store.lookup);
  } finally {
    store?.close();
  }
  return examples;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** Each adapter evaluated gets the run's verdicts against the others in its model.json and README.md (its lineage). */
function recordInAdapterCards(report: EvalReport, systems: readonly SystemSpec[], reportFile: string): void {
  const modelOf = (name: string) => {
    const system = systems.find((candidate) => candidate.name === name);
    return system !== undefined && "model" in system && system.model !== undefined ? system.model.model : null;
  };
  for (const comparison of report.comparisons) {
    const model = modelOf(comparison.system);
    if (model === null || !fs.existsSync(model) || !fs.statSync(model).isDirectory()) continue;
    const card = readModelCard(model);
    if (card?.kind !== "adapter") continue;
    const entry = {
      report: reportFile,
      created_at: report.created_at,
      against: comparison.against,
      against_model: modelOf(comparison.against),
      examples: comparison.examples,
      improved: comparison.improved,
      worsened: comparison.worsened,
      unclear: comparison.unclear,
      verdict: comparison.verdict,
    };
    const updated = { ...card, evals: [...(card.evals ?? []), entry] };
    writeModelCard(model, updated);
    writeAdapterReadme(model, updated);
  }
}
