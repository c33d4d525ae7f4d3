import fs from "node:fs";
import path from "node:path";
import { bundledDataDir, workdirPaths, type AtsConfig, type ProgressSink } from "@ats-lora/core";
import { buildTrainingPairs, type TrainingPairsManifest } from "@ats-lora/dataset-builder";
import { attachMetadata, readTestData, runEvaluation, type EvalReport, type ReportFiles } from "@ats-lora/evaluator";
import { FeedbackStore, importJsonlFile, type FeedbackStats, type ImportReport } from "@ats-lora/feedback";
import { buildStore, type BuildStoreReport } from "@ats-lora/rag";
import { createTinyModel, runTraining, WorkerClient, workerModelRunner, type ResultOf, type TrainEvent } from "@ats-lora/trainer";

export interface DemoOptions {
  /** The working folder; a new one is made beside `cwd` when not given. */
  workdir?: string;
  cwd?: string;
  config: AtsConfig;
  progress?: (unit: "count" | "bytes") => ProgressSink;
  onWarning?: (message: string) => void;
  /** A line for the human as each stage starts. */
  onStage?: (message: string) => void;
  now?: Date;
}

export interface DemoResult {
  workdir: string;
  stages: Array<{ name: string; seconds: number }>;
  imports: ImportReport[];
  stats: FeedbackStats;
  training_pairs: TrainingPairsManifest;
  base_model: { path: string; created: ResultOf<"create_tiny"> | null };
  rag: Pick<BuildStoreReport, "manifest" | "files">;
  training: { adapter: string; metrics: Record<string, unknown> };
  /** Base against tuned on build-db's SFT test split. */
  comparison: {
    examples: number;
    base: EvalReport["systems"][number]["metrics"];
    tuned: EvalReport["systems"][number]["metrics"];
    metrics: EvalReport["comparisons"][number]["metrics"];
    verdict: string;
  };
  report: ReportFiles;
}

/** The bundled sample files the demo imports. */
export function sampleFiles(): string[] {
  const samples = path.join(bundledDataDir(), "samples");
  return [path.join(samples, "interactions.jsonl"), path.join(samples, "gold_pairs.jsonl")];
}

/** A new folder name for a demo run: ats-lora-demo-YYYYMMDD-HHMMSS. */
export function newDemoWorkdir(cwd: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  let candidate = path.join(cwd, `ats-lora-demo-${stamp}`);
  for (let n = 2; fs.existsSync(candidate); n += 1) candidate = path.join(cwd, `ats-lora-demo-${stamp}-${n}`);
  return candidate;
}

/**
 * The loop on the bundled sample data, on the CPU: a tiny base model made here (kept on a second run), collect
 * (the sample interactions, feedback and gold pairs), build-db, rag build of data/ats_docs, a short LoRA run,
 * and eval of the tuned adapter against its base on the SFT test split, with the report written.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const workdir = path.resolve(options.workdir ?? newDemoWorkdir(options.cwd ?? process.cwd(), options.now ?? new Date()));
  const paths = workdirPaths(workdir);
  for (const folder of [paths.feedbackDb, paths.vectorStore, paths.models]) fs.mkdirSync(folder, { recursive: true });
  const stages: DemoResult["stages"] = [];
  const config = options.config;
  const timed = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
    options.onStage?.(`demo: ${name}`);
    const start = performance.now();
    const result = await run();
    stages.push({ name, seconds: Math.round(performance.now() - start) / 1000 });
    return result;
  };

  const store = FeedbackStore.open(paths.feedbackSqlite);
  let imports: ImportReport[];
  let stats: FeedbackStats;
  try {
    imports = await timed("collect import", () =>
      sampleFiles().map((file) =>
        importJsonlFile(store, file, {
          maxProblemsListed: options.config.collect.max_errors_listed,
          maxLineBytes: options.config.collect.max_line_bytes,
          progress: options.progress?.("bytes"),
        }),
      ),
    );
    stats = await timed("collect stats", () => store.stats(options.config.feedback.min_samples));
  } finally {
    store.close();
  }
  const trainingPairs = await timed("build-db", () =>
    buildTrainingPairs({
      config: options.config,
      storeFile: paths.feedbackSqlite,
      outputDir: paths.trainingPairs,
      embeddingCacheFile: path.join(paths.cache, "embeddings.sqlite"),
      progress: options.progress?.("count"),
      onWarning: options.onWarning,
    }),
  );

  const tiny = path.join(paths.models, "tiny");
  // Kept on a second run: it is the base the adapter is compared with.
  const created = await timed("create the tiny base model", () =>
    fs.existsSync(path.join(tiny, "config.json"))
      ? null
      : createTinyModel({ dir: tiny, pretrainSteps: config.demo.pretrain_steps, seed: config.training.seed, progress: options.progress?.("count") }),
  );

  const knowledge = await timed("rag build", () =>
    buildStore({
      docsDir: path.join(bundledDataDir(), "ats_docs"),
      outputDir: paths.vectorStore,
      config,
      embeddingCacheFile: path.join(paths.cache, "embeddings.sqlite"),
      progress: options.progress?.("count"),
      onWarning: options.onWarning,
    }),
  );

  const adapter = path.join(paths.models, "demo-v1");
  const trainConfig: AtsConfig = {
    ...config,
    model: { ...config.model, quantization: config.demo.quantization },
    lora: { ...config.lora, target_modules: config.demo.target_modules },
    training: {
      ...config.training,
      max_steps: config.demo.train_steps,
      learning_rate: config.demo.learning_rate,
      batch_size: config.demo.batch_size,
      grad_accum: 1,
      warmup_steps: Math.min(5, config.demo.train_steps),
      save_steps: config.demo.train_steps,
      logging_steps: Math.max(1, Math.floor(config.demo.train_steps / 12)),
      gradient_checkpointing: false,
    },
  };
  const trained = await timed("train", async () => {
    // A second run trains again from the start, not from the first run's last checkpoint.
    fs.rmSync(adapter, { recursive: true, force: true });
    const bar = options.progress?.("count");
    const outcome = await runTraining({
      config: trainConfig,
      base: tiny,
      dataDir: paths.trainingPairs,
      outputDir: adapter,
      format: "sft",
      onEvent: (event: TrainEvent) => {
        if (event.method === "progress" && event.params.stage === "train") {
          if (event.params.step <= 1) bar?.start(event.params.total, "train");
          bar?.update(event.params.step);
        }
      },
    }).finally(() => bar?.stop());
    if (outcome.status !== "completed") throw new Error("the demo's training run was cancelled");
    return outcome;
  });

  const evaluation = await timed("eval base vs tuned", async () => {
    const testFile = path.join(paths.trainingPairs, "sft", "test.jsonl");
    const examples = readTestData(testFile);
    const lookup = FeedbackStore.open(paths.feedbackSqlite, { readonly: true });
    try {
      attachMetadata(examples, (id) => lookup.getInteraction(id)?.metadata);
    } finally {
      lookup.close();
    }
    const outDir = path.join(workdir, "eval", "demo");
    const { client } = await WorkerClient.start({ logFile: path.join(outDir, "worker.log") });
    try {
      return await runEvaluation({
        config,
        testFile,
        examples,
        systems: [
          { name: "tuned", role: "model", model: { model: adapter, base: tiny } },
          { name: "base", role: "base", model: { model: tiny } },
        ],
        runner: workerModelRunner(client),
        maxNewTokens: config.demo.max_new_tokens,
        seed: config.training.seed,
        bootstrapSamples: config.eval.bootstrap_samples,
        outDir,
        embeddingCacheFile: path.join(paths.cache, "embeddings.sqlite"),
        progress: options.progress?.("count"),
        onStage: options.onStage,
      });
    } finally {
      await client.close();
    }
  });

  const [tuned, base] = evaluation.report.systems;
  const comparison = evaluation.report.comparisons[0]!;
  return {
    workdir,
    stages,
    imports,
    stats,
    training_pairs: trainingPairs,
    base_model: { path: tiny, created },
    rag: { manifest: knowledge.manifest, files: knowledge.files },
    training: { adapter, metrics: trained.metrics as Record<string, unknown> },
    comparison: { examples: comparison.examples, base: base!.metrics, tuned: tuned!.metrics, metrics: comparison.metrics, verdict: comparison.verdict },
    report: evaluation.files,
  };
}
