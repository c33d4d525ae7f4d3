import fs from "node:fs";
import path from "node:path";
import { bundledDataDir, workdirPaths, type AtsConfig, type ProgressSink } from "@ats-lora/core";
import { buildTrainingPairs, type TrainingPairsManifest } from "@ats-lora/dataset-builder";
import { FeedbackStore, importJsonlFile, type FeedbackStats, type ImportReport } from "@ats-lora/feedback";

export interface DemoOptions {
  /** The working folder; a new one is made beside `cwd` when not given. */
  workdir?: string;
  cwd?: string;
  config: AtsConfig;
  progress?: (unit: "count" | "bytes") => ProgressSink;
  onWarning?: (message: string) => void;
  now?: Date;
}

export interface DemoResult {
  workdir: string;
  stages: Array<{ name: string; seconds: number }>;
  imports: ImportReport[];
  stats: FeedbackStats;
  training_pairs: TrainingPairsManifest;
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
 * The loop on the bundled sample data. Today: collect (import the sample interactions, feedback and gold
 * pairs), the store's statistics and build-db; rag, train and eval join as they land.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const workdir = path.resolve(options.workdir ?? newDemoWorkdir(options.cwd ?? process.cwd(), options.now ?? new Date()));
  const paths = workdirPaths(workdir);
  for (const folder of [paths.feedbackDb, paths.vectorStore, paths.models]) fs.mkdirSync(folder, { recursive: true });
  const stages: DemoResult["stages"] = [];
  const timed = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
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
  return { workdir, stages, imports, stats, training_pairs: trainingPairs };
}
