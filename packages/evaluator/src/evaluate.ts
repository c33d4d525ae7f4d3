import fs from "node:fs";
import path from "node:path";
import { buildPrompt, InputError, pairedBootstrapMany, parsePrompt, silentProgress, taskAnswerJsonSchema, throwIfAborted, type AtsConfig, type ProgressSink } from "@ats-lora/core";
import { cosine } from "@ats-lora/embeddings";
import { baselineOutput, matchPairs, weightedScores } from "./baseline.js";
import { matcherForEval, type MatcherScorer } from "./matcher.js";
import { matchPredictions, type EvalExample } from "./held-out-set.js";
import { plainVerdict, signed } from "./report.js";
import type { Comparison, EmbedderIdentity, EvalReport, ExampleRecord, MetricComparison, RetrievalSettings, SystemReport, TrainingLog } from "./report-types.js";
import {
  COUNT_METRICS,
  exampleFeatures,
  fieldBreakdown,
  groupMetrics,
  LOWER_IS_BETTER,
  scoreExample,
  SPEED_METRICS,
  type ExampleFeatures,
  type ExampleScores,
  type SystemOutput,
} from "./score.js";
import { comparisonPairs, type ModelRef, type SystemSpec } from "./systems.js";

/** A model's answer to one prompt, timed. */
export interface Generation {
  text: string;
  /** New tokens, the end-of-generation token included. */
  tokens: number;
  seconds: number;
  /** Why generation ended, where the runner says (node-llama-cpp: eos, stop, max_tokens, …); "max_tokens" is the token limit. */
  stoppedBy?: string;
}

export interface GenerateOptions {
  maxNewTokens: number;
  seed: number;
  /** A JSON Schema every answer of this call must follow (constrained decoding; node-llama-cpp only). */
  jsonSchema?: Record<string, unknown>;
}

/**
 * What runs models: node-llama-cpp or the trainer's Python worker in the CLI (this package depends on neither).
 * `generate` gets every prompt of a group at once, so the runner can batch them.
 */
export interface ModelRunner {
  generate(ref: ModelRef, prompts: string[], options: GenerateOptions, onProgress?: (done: number) => void): Promise<Generation[]>;
  score(ref: ModelRef, prompts: string[], references: string[], onProgress?: (done: number) => void): Promise<Array<{ loss: number | null; tokens: number }>>;
  /** Stops the running generate or score, which then rejects. */
  cancel?(): void;
  /** What generates for this model (node-llama-cpp or the worker): the report names it beside each system. */
  engine?(ref: ModelRef): string;
}

/** Sentence embeddings for similarity metrics (the project's embedder). */
export interface TextEmbedder {
  identity: EmbedderIdentity;
  embed(texts: readonly string[], onProgress?: (progress: { done: number; total: number }) => void): Promise<{ vectors: Float32Array[] }>;
}

/** Where --rag passages come from (the rag package's KnowledgeStore in the CLI). */
export interface PassageRetriever {
  describe: RetrievalSettings;
  passages(query: string): Promise<string[]>;
}

export interface EvaluateOptions {
  config: AtsConfig;
  testFile: string;
  examples: EvalExample[];
  /** The first is the system under evaluation; every other one is compared against it. */
  systems: SystemSpec[];
  runner?: ModelRunner;
  embedder: TextEmbedder;
  retriever?: PassageRetriever;
  /** The generation length limit of tasks not in `maxNewTokensByTask`. */
  maxNewTokens: number;
  /** Per task (eval.max_new_tokens_by_task). */
  maxNewTokensByTask?: Record<string, number>;
  /** Score each reference's loss under each model (perplexity); default true. Through node-llama-cpp it costs about a generation. */
  referenceLoss?: boolean;
  seed: number;
  bootstrapSamples: number;
  /** The examples are a part of the test file (--limit): a predictions file may hold rows for the rest. */
  partialTestData?: boolean;
  progress?: ProgressSink;
  onStage?: (message: string) => void;
  /** Checked between systems and stages; a running generate or score stops through the runner's cancel (evaluateModels wires it). */
  signal?: AbortSignal;
  now?: Date;
  /** Where the TF-IDF baseline looks for trained matchers (the newest is used); default: none, it fits on training rows. */
  modelsDir?: string;
}

const INTERRUPTED_HINT = "nothing was written; run the command again to evaluate";

/**
 * Evaluates each system on the same examples, scores the outputs, and compares the first system with each
 * other one (paired bootstrap over examples). Returns the report and every example's outputs and scores.
 */
export async function evaluate(options: EvaluateOptions): Promise<{ report: EvalReport; examples: ExampleRecord[] }> {
  const { config, examples } = options;
  const progress = options.progress ?? silentProgress;
  const stage = options.onStage ?? (() => undefined);
  checkSchemaEngines(options);
  const prompts = options.retriever ? await withRetrieved(examples, options.retriever, config, options.testFile) : examples.map((example) => example.prompt);
  const limits = examples.map((example) => tokenLimit(example.task, options));

  // The TF-IDF baselines' matchers: trained ones, or fitted on training rows (the report says which).
  const matchers = new Map(
    options.systems.flatMap((system) =>
      system.role === "baseline" && system.method === "tfidf" ? [[system.name, matcherForEval(system.matcher, options.modelsDir, options.testFile, examples, config.prompts)] as const] : [],
    ),
  );
  const outputs = new Map<string, Array<SystemOutput | null>>();
  const losses: LossCache = new Map();
  for (const system of options.systems) {
    throwIfAborted(options.signal, "evaluation", INTERRUPTED_HINT);
    outputs.set(system.name, await systemOutputs(system, examples, prompts, limits, options, progress, stage, losses, matchers.get(system.name)?.scorer));
  }

  throwIfAborted(options.signal, "evaluation", INTERRUPTED_HINT);
  stage("scoring the outputs");
  const features = examples.map((example) => exampleFeatures(example, config.prompts));
  const scores = await scoreAll(options.embedder, features, outputs, progress);

  const groups = groupIndices(examples);
  const pairs = comparisonPairs(options.systems);
  // Resampling every group of every system and comparison takes a while on large test sets: a bar with an ETA.
  let resampled = 0;
  progress.start((options.systems.length + pairs.length) * groups.size, "bootstrap");
  const tick = () => progress.update((resampled += 1));
  const systems: SystemReport[] = options.systems.map((system) => {
    const own = scores.get(system.name)!;
    const engine = system.role !== "predictions" && system.role !== "baseline" ? options.runner?.engine?.(system.model) : undefined;
    const metrics: SystemReport["metrics"] = {};
    const intervals: SystemReport["intervals"] = {};
    for (const [group, all] of groups) {
      const indices = all.filter((index) => own[index] !== null);
      if (indices.length === 0) {
        tick();
        continue;
      }
      const rows = indices.map((index) => own[index]!);
      const feats = indices.map((index) => features[index]!);
      const taskMetrics = { taskMetrics: group !== "overall" };
      const boot = pairedBootstrapMany(indices.length, (picked) => groupMetrics(rows, feats, picked, taskMetrics), {
        samples: options.bootstrapSamples,
        seed: options.seed,
      });
      tick();
      const kept = Object.entries(boot).filter(([metric]) => reported(system, metric));
      metrics[group] = Object.fromEntries(kept.map(([metric, interval]) => [metric, interval.delta]));
      intervals[group] = Object.fromEntries(
        kept
          .filter(([metric]) => !COUNT_METRICS.has(metric))
          .map(([metric, interval]) => [metric, [interval.low, interval.high] as [number, number]]),
      );
    }
    const parsed = groups.get("resume_parse")?.filter((index) => own[index] !== null) ?? [];
    return {
      name: system.name,
      role: system.role,
      ...("model" in system && system.model ? { model: system.model } : {}),
      ...(engine !== undefined ? { engine } : {}),
      ...("jsonSchema" in system && system.jsonSchema ? { json_schema: true } : {}),
      ...("file" in system ? { file: system.file } : {}),
      ...("method" in system ? { method: system.method } : {}),
      ...(matchers.has(system.name) ? { matcher: matchers.get(system.name)!.source } : {}),
      answered: own.filter((row) => row !== null).length,
      metrics,
      intervals,
      ...(parsed.length > 0 ? { fields: fieldBreakdown(own as ExampleScores[], parsed) } : {}),
      ...("model" in system && system.model ? trainingLog(system.model.model) : {}),
    };
  });

  const comparisons = pairs.map(([system, other]) => compare(system, other, scores, features, groups, options, tick));
  progress.stop();

  const tasks: Record<string, number> = {};
  const limitByTask: Record<string, number> = {};
  examples.forEach((example, i) => {
    tasks[example.task] = (tasks[example.task] ?? 0) + 1;
    limitByTask[example.task] = limits[i]!;
  });
  const report: EvalReport = {
    report_version: 1,
    created_at: (options.now ?? new Date()).toISOString(),
    test_data: { file: path.resolve(options.testFile), examples: examples.length, tasks },
    settings: {
      max_new_tokens: options.maxNewTokens,
      max_new_tokens_by_task: limitByTask,
      json_schema: options.systems.some((system) => "jsonSchema" in system && system.jsonSchema === true),
      temperature: 0,
      seed: options.seed,
      bootstrap_samples: options.bootstrapSamples,
      confidence_level: 0.95,
      rag: options.retriever?.describe ?? null,
    },
    embedder: options.embedder.identity,
    systems,
    comparisons,
  };
  const records: ExampleRecord[] = examples.map((example, index) => ({
    line: example.line,
    task: example.task,
    prompt: prompts[index]!,
    reference: example.completion,
    outputs: Object.fromEntries(
      options.systems.map((system) => {
        const output = outputs.get(system.name)![index];
        const score = scores.get(system.name)![index];
        return [system.name, output && score ? { ...output, scores: score } : null];
      }),
    ),
  }));
  return { report, examples: records };
}

/** Prompts rebuilt with retrieved passages (as build-db --rag builds them), refusing prompts that already have them. */
async function withRetrieved(examples: readonly EvalExample[], retriever: PassageRetriever, config: AtsConfig, testFile: string): Promise<string[]> {
  const manifest = path.join(path.dirname(path.dirname(path.resolve(testFile))), "manifest.json");
  if (fs.existsSync(manifest)) {
    const rag = (JSON.parse(fs.readFileSync(manifest, "utf8")) as { rag?: unknown }).rag;
    if (rag) {
      throw new InputError(`the test prompts already hold retrieved passages (${manifest} records build-db --rag)`, {
        hint: "drop --rag: eval would add the passages a second time",
      });
    }
  }
  const prompts: string[] = [];
  for (const example of examples) {
    const parsed = parsePrompt(example.prompt, config.prompts);
    if (!parsed) {
      throw new InputError(`${testFile}:${example.line}: prompt: not built with the configured prompts.template, so --rag cannot add passages to it`, {
        hint: "evaluate it without --rag, or rebuild the test data with this configuration",
      });
    }
    prompts.push(buildPrompt({ task: example.task, query: parsed.query, context: parsed.context, retrieved: await retriever.passages(parsed.query) }, config.prompts));
  }
  return prompts;
}

/** The generation length limit of a task: its own (eval.max_new_tokens_by_task), else the general one. */
export function tokenLimit(task: string, options: Pick<EvaluateOptions, "maxNewTokens" | "maxNewTokensByTask">): number {
  return options.maxNewTokensByTask?.[task] ?? options.maxNewTokens;
}

/** Prompts answered in one generate call: the same token limit and the same answer schema (if any). */
export interface GenerationBatch {
  indices: number[];
  maxNewTokens: number;
  jsonSchema?: Record<string, unknown>;
}

/**
 * The examples split into generate calls by token limit and, when `constrained`, by answer schema (a task's
 * JSON Schema from core; tasks without one are generated freely), in order of first appearance.
 */
export function generationBatches(tasks: readonly string[], limits: readonly number[], constrained: boolean): GenerationBatch[] {
  const batches = new Map<string, GenerationBatch>();
  tasks.forEach((task, index) => {
    const jsonSchema = constrained ? taskAnswerJsonSchema(task) : undefined;
    const key = JSON.stringify([limits[index], jsonSchema ? task : null]);
    let batch = batches.get(key);
    if (!batch) batches.set(key, (batch = { indices: [], maxNewTokens: limits[index]!, ...(jsonSchema ? { jsonSchema } : {}) }));
    batch.indices.push(index);
  });
  return [...batches.values()];
}

/** --json-schema needs node-llama-cpp's grammars: say so before any model runs rather than after the unconstrained systems. */
function checkSchemaEngines(options: EvaluateOptions): void {
  for (const system of options.systems) {
    if (!("jsonSchema" in system) || !system.jsonSchema) continue;
    const engine = options.runner?.engine?.(system.model);
    if (engine !== undefined && engine !== "node-llama-cpp") {
      throw new InputError(`--json-schema: ${describeModel(system.model)} generates through the ${engine}, which cannot constrain answers to a JSON schema`, {
        hint: "evaluate a GGUF model or an adapter on one (ats-lora export, ats-lora models pull), or drop --json-schema",
      });
    }
  }
}

/** Reference losses by model: a `+schema` system is the same model as its twin, whose losses it shares. */
type LossCache = Map<string, Array<{ loss: number | null; tokens: number }>>;

async function systemOutputs(
  system: SystemSpec,
  examples: readonly EvalExample[],
  prompts: string[],
  limits: readonly number[],
  options: EvaluateOptions,
  progress: ProgressSink,
  stage: (message: string) => void,
  lossCache: LossCache,
  matcher: MatcherScorer | undefined,
): Promise<Array<SystemOutput | null>> {
  if (system.role === "predictions") {
    const rows = matchPredictions(system.file, examples, { allowExtra: options.partialTestData });
    const losses = system.model && options.referenceLoss !== false ? await referenceLosses(system, system.model, examples, prompts, options, progress, stage, lossCache) : undefined;
    return rows.map((row, i) => ({
      text: row.prediction,
      ...(row.seconds !== undefined ? { seconds: row.seconds } : {}),
      ...(row.tokens !== undefined ? { tokens: row.tokens } : {}),
      ...(losses ? { loss: losses[i]?.loss ?? null, loss_tokens: losses[i]?.tokens ?? 0 } : {}),
    }));
  }
  if (system.role === "baseline") {
    stage(`baseline ${system.method}: scoring the match-score examples`);
    const pairs = matchPairs(examples, options.config.prompts);
    // The TF-IDF matcher weighs its sections by its own (trained) settings; the embedding baseline by the document's.
    const values =
      matcher !== undefined
        ? pairs.map((pair) => matcher.score(pair.sections, pair.job).score)
        : await weightedScores(pairs, async (texts) => {
            const { vectors } = await options.embedder.embed(texts.flat());
            return texts.map((_, i) => cosine(vectors[2 * i]!, vectors[2 * i + 1]!));
          });
    const result: Array<SystemOutput | null> = examples.map(() => null);
    pairs.forEach((pair, i) => (result[pair.example] = { text: baselineOutput(values[i]!) }));
    return result;
  }
  const runner = options.runner;
  if (!runner) throw new InputError(`evaluating ${system.name} needs a model runner`);
  const constrained = system.jsonSchema === true;
  stage(`${system.name}: generating ${prompts.length} answers with ${describeModel(system.model)}${constrained ? ", JSON answers under their schema" : ""}`);
  // One generate call per batch, each with all its prompts, so the runner answers them several at a time.
  const generations = new Array<Generation>(prompts.length);
  let finished = 0;
  progress.start(prompts.length, `${system.name} generate`);
  for (const batch of generationBatches(examples.map((example) => example.task), limits, constrained)) {
    throwIfAborted(options.signal, "evaluation", INTERRUPTED_HINT);
    const generateOptions = { maxNewTokens: batch.maxNewTokens, seed: options.seed, ...(batch.jsonSchema ? { jsonSchema: batch.jsonSchema } : {}) };
    const answers = await runner.generate(
      system.model,
      batch.indices.map((index) => prompts[index]!),
      generateOptions,
      (done) => progress.update(finished + done),
    );
    if (answers.length !== batch.indices.length) throw new Error(`the model runner answered ${answers.length} of ${batch.indices.length} prompts`);
    batch.indices.forEach((index, k) => (generations[index] = answers[k]!));
    finished += batch.indices.length;
    progress.update(finished);
  }
  progress.stop();
  const losses = options.referenceLoss === false ? [] : await referenceLosses(system, system.model, examples, prompts, options, progress, stage, lossCache);
  return generations.map((generation, i) => ({
    text: generation.text,
    seconds: generation.seconds,
    tokens: generation.tokens,
    // Without the runner's reason, an answer that used every token it was allowed counts as cut off.
    hit_token_limit: generation.stoppedBy !== undefined ? generation.stoppedBy === "max_tokens" : generation.tokens >= limits[i]!,
    ...(options.referenceLoss === false ? {} : { loss: losses[i]?.loss ?? null, loss_tokens: losses[i]?.tokens ?? 0 }),
  }));
}

async function referenceLosses(
  system: SystemSpec,
  model: ModelRef,
  examples: readonly EvalExample[],
  prompts: string[],
  options: EvaluateOptions,
  progress: ProgressSink,
  stage: (message: string) => void,
  cache: LossCache,
): Promise<Array<{ loss: number | null; tokens: number }>> {
  if (!options.runner) throw new InputError(`scoring the references under ${describeModel(model)} needs a model runner`);
  const key = JSON.stringify([model.model, model.base ?? null]);
  const known = cache.get(key);
  if (known) return known;
  throwIfAborted(options.signal, "evaluation", INTERRUPTED_HINT);
  stage(`${system.name}: loss of the ${prompts.length} references`);
  progress.start(prompts.length, `${system.name} score`);
  try {
    const losses = await options.runner.score(model, prompts, examples.map((example) => example.completion), (done) => progress.update(done));
    cache.set(key, losses);
    return losses;
  } finally {
    progress.stop();
  }
}

export function describeModel(ref: ModelRef): string {
  return ref.base ? `${ref.model} on ${ref.base}` : ref.model;
}

/** Every system's per-example scores; the embedder sees each distinct text once. */
async function scoreAll(
  embedder: TextEmbedder,
  features: readonly ExampleFeatures[],
  outputs: ReadonlyMap<string, Array<SystemOutput | null>>,
  progress: ProgressSink,
): Promise<Map<string, Array<ExampleScores | null>>> {
  const texts = new Map<string, number>();
  const want = (text: string) => {
    if (!texts.has(text)) texts.set(text, texts.size);
  };
  for (const feature of features) {
    want(feature.reference);
    if (feature.candidate !== undefined) want(feature.candidate);
    if (feature.vague_part !== undefined) want(feature.vague_part);
  }
  for (const list of outputs.values()) for (const output of list) if (output) want(output.text);
  progress.start(texts.size, "embed");
  const { vectors } = await embedder.embed([...texts.keys()], ({ done }) => progress.update(done));
  progress.stop();
  const vector = (text: string) => vectors[texts.get(text)!]!;
  const result = new Map<string, Array<ExampleScores | null>>();
  for (const [name, list] of outputs) {
    result.set(
      name,
      list.map((output, i) => {
        if (!output) return null;
        const feature = features[i]!;
        const own = vector(output.text);
        return scoreExample(output, feature, {
          reference: cosine(own, vector(feature.reference)),
          ...(feature.candidate !== undefined ? { candidate: cosine(own, vector(feature.candidate)) } : {}),
          ...(feature.vague_part !== undefined ? { vague_part: cosine(own, vector(feature.vague_part)) } : {}),
        });
      }),
    );
  }
  return result;
}

/** Example indices by group: every example (`overall`), then each task's in order of first appearance. */
function groupIndices(examples: readonly EvalExample[]): Map<string, number[]> {
  const groups = new Map<string, number[]>([["overall", examples.map((_, i) => i)]]);
  examples.forEach((example, i) => {
    const list = groups.get(example.task) ?? [];
    list.push(i);
    groups.set(example.task, list);
  });
  return groups;
}

/** A baseline answers with a bare score: text overlap with the reference's reasoning would say nothing about it. */
const TEXT_METRICS = new Set(["semantic_similarity", "rouge_l", "exact_match"]);

function reported(system: SystemSpec, metric: string): boolean {
  return system.role !== "baseline" || !TEXT_METRICS.has(metric);
}

function compare(
  system: SystemSpec,
  otherSystem: SystemSpec,
  scores: ReadonlyMap<string, Array<ExampleScores | null>>,
  features: readonly ExampleFeatures[],
  groups: ReadonlyMap<string, number[]>,
  options: EvaluateOptions,
  tick: () => void,
): Comparison {
  const [name, otherName] = [system.name, otherSystem.name];
  const own = scores.get(name)!;
  const other = scores.get(otherName)!;
  const metrics: MetricComparison[] = [];
  let examples = 0;
  for (const [group, all] of groups) {
    // Paired: only the examples both systems answered.
    const indices = all.filter((index) => own[index] !== null && other[index] !== null);
    if (indices.length === 0) {
      tick();
      continue;
    }
    if (group === "overall") examples = indices.length;
    const a = indices.map((index) => own[index]!);
    const b = indices.map((index) => other[index]!);
    const feats = indices.map((index) => features[index]!);
    const taskMetrics = { taskMetrics: group !== "overall" };
    const intervals = pairedBootstrapMany(
      indices.length,
      (picked) => {
        const ma = groupMetrics(a, feats, picked, taskMetrics);
        const mb = groupMetrics(b, feats, picked, taskMetrics);
        return Object.fromEntries(
          Object.keys(ma)
            .filter((metric) => metric in mb && !COUNT_METRICS.has(metric) && reported(system, metric) && reported(otherSystem, metric))
            .map((metric) => [metric, ma[metric]! - mb[metric]!]),
        );
      },
      { samples: options.bootstrapSamples, seed: options.seed },
    );
    tick();
    const ma = groupMetrics(a, feats, Uint32Array.from(indices.keys()), taskMetrics);
    const mb = groupMetrics(b, feats, Uint32Array.from(indices.keys()), taskMetrics);
    for (const [metric, interval] of Object.entries(intervals)) {
      if (Number.isNaN(interval.delta)) continue;
      const lowerBetter = LOWER_IS_BETTER.has(metric);
      const up = interval.low > 0;
      const down = interval.high < 0;
      metrics.push({
        group,
        metric,
        value: ma[metric]!,
        other: mb[metric]!,
        delta: interval.delta,
        low: interval.low,
        high: interval.high,
        better: lowerBetter ? "lower" : "higher",
        outcome: up ? (lowerBetter ? "worse" : "better") : down ? (lowerBetter ? "better" : "worse") : "unclear",
      });
    }
  }
  const quality = metrics.filter((metric) => !SPEED_METRICS.has(metric.metric));
  const improved = quality.filter((metric) => metric.outcome === "better").length;
  const worsened = quality.filter((metric) => metric.outcome === "worse").length;
  const unclear = quality.length - improved - worsened;
  const word =
    improved > 0 && worsened === 0 ? "better than" : worsened > 0 && improved === 0 ? "worse than" : improved > 0 ? "mixed against" : "not clearly different from";
  const headline = quality.find((metric) => metric.group === "overall" && metric.metric === "semantic_similarity");
  const verdict =
    `${name} is ${word} ${otherName} on ${examples} examples: better on ${improved}, worse on ${worsened}, unclear on ${unclear} of ${quality.length} metrics (95% paired bootstrap intervals)` +
    (headline ? `; semantic similarity ${signed(headline.delta)} [${signed(headline.low)}, ${signed(headline.high)}]` : "");
  return { system: name, against: otherName, examples, metrics, improved, worsened, unclear, verdict, summary: plainVerdict(name, otherName, metrics) };
}


/** The loss curve and metrics train wrote beside an adapter, when the model is such a folder. */
export function trainingLog(model: string): { training?: TrainingLog } {
  const curveFile = path.join(model, "loss_curve.jsonl");
  if (!fs.existsSync(curveFile)) return {};
  const loss_curve: TrainingLog["loss_curve"] = [];
  for (const line of fs.readFileSync(curveFile, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (typeof entry.step !== "number") continue;
      if (typeof entry.loss === "number") loss_curve.push({ step: entry.step, loss: entry.loss });
      if (typeof entry.eval_loss === "number") loss_curve.push({ step: entry.step, eval_loss: entry.eval_loss });
    } catch {
      // A torn last line of a crashed run: the curve up to it is still worth drawing.
    }
  }
  const metricsFile = path.join(model, "metrics.json");
  const metrics = fs.existsSync(metricsFile) ? (JSON.parse(fs.readFileSync(metricsFile, "utf8")) as Record<string, unknown>) : null;
  return { training: { loss_curve, metrics } };
}
