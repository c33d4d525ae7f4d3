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
import { createTinyModel, trainAdapter } from "@ats-lora/trainer";
import type { ResultOf } from "@ats-lora/worker";
import { openMetadata, openRunner } from "./wiring.js";

export interface DemoInput {
  /** The working folder; a new one is made beside `cwd` when not given. */
  workdir?: string;
  cwd?: string;
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
    /** The verdict in plain words, a line per task where a counted metric is clearly better or worse. */
    summary: string[];
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

/** The demo's short LoRA run: demo.* settings over the configuration, on the tiny base. */
function demoTrainingConfig(config: AtsConfig, base: string): AtsConfig {
  return {
    ...config,
    model: { ...config.model, base, quantization: config.demo.quantization },
    lora: { ...config.lora, target_modules: config.demo.target_modules },
    training: {
      ...config.training,
      format: "sft",
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
}

/**
 * The loop on the bundled sample data, on the CPU, through the packages' operations: a tiny base model made here
 * (kept on a second run), collect import of the sample interactions, feedback and gold pairs, build-db, rag build
 * of data/ats_docs, a short LoRA run, and eval of the tuned adapter against its base on the SFT test split, with
 * the report written. Each stage begins with a `stage` event; the stages' own events pass through.
 */
export async function runDemo(input: DemoInput, config: AtsConfig, options: OperationOptions = {}): Promise<DemoResult> {
  const workdir = path.resolve(input.workdir ?? newDemoWorkdir(input.cwd ?? process.cwd(), input.now ?? new Date()));
  const paths = workdirPaths(workdir);
  for (const folder of [paths.feedbackDb, paths.vectorStore, paths.models]) fs.mkdirSync(folder, { recursive: true });
  const context: OperationContext = { paths, config };
  const { signal } = options;
  const onEvent = (event: OperationEvent): void => options.onEvent?.(event);
  const stages: DemoResult["stages"] = [];
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

  const tiny = path.join(paths.models, "tiny");
  // Kept on a second run: it is the base the adapter is compared with.
  const created = await timed("create the tiny base model", async () =>
    fs.existsSync(path.join(tiny, "config.json"))
      ? null
      : createTinyModel({ dir: tiny, pretrainSteps: config.demo.pretrain_steps, seed: config.training.seed }, context, { signal, onEvent }),
  );

  const knowledge = await timed("rag build", () =>
    buildKnowledgeStore({ docsDir: path.join(bundledDataDir(), "ats_docs") }, context, { signal, onEvent }),
  );

  const adapter = path.join(paths.models, "demo-v1");
  const trained = await timed("train", async () => {
    // A second run trains again from the start, not from the first run's last checkpoint.
    fs.rmSync(adapter, { recursive: true, force: true });
    const outcome = await trainAdapter({ outputDir: adapter }, { paths, config: demoTrainingConfig(config, tiny) }, {
      signal,
      onEvent: (event) => {
        if (event.method === "progress" && event.params.stage === "train") {
          onEvent({ type: "progress", stage: "train", done: event.params.step, total: event.params.total, unit: "count" });
        }
      },
    });
    if (outcome.status !== "completed") throw interruptedError("the demo's training run", "run ats-lora demo again: it trains from the start");
    return outcome;
  });

  const evaluation = await timed("eval base vs tuned", () =>
    evaluateModels(
      {
        systems: [
          { name: "tuned", role: "model", model: { model: adapter, base: tiny } },
          { name: "base", role: "base", model: { model: tiny } },
        ],
        testData: trainingPairsFile(paths.trainingPairs, "sft", "test"),
        outDir: path.join(workdir, "eval", "demo"),
        maxNewTokens: config.demo.max_new_tokens,
        openRunner,
        openMetadata,
      },
      context,
      { signal, onEvent },
    ),
  );

  const [tuned, base] = evaluation.systems;
  const comparison = evaluation.comparisons[0]!;
  return {
    workdir,
    stages,
    imports: imported.files,
    stats,
    training_pairs: trainingPairs,
    base_model: { path: tiny, created },
    rag: { manifest: knowledge.manifest, files: knowledge.files },
    training: { adapter, metrics: trained.metrics as Record<string, unknown> },
    comparison: { examples: comparison.examples, base: base!.metrics, tuned: tuned!.metrics, metrics: comparison.metrics, verdict: comparison.verdict, summary: comparison.summary },
    report: evaluation.report_files,
  };
}

/** build-db's closing notes (the embeddings cache, the splits) are for `build-db` itself; the demo keeps its warnings. */
function quietNotes(onEvent: (event: OperationEvent) => void): (event: OperationEvent) => void {
  return (event) => {
    if (event.type !== "info") onEvent(event);
  };
}
