import fs from "node:fs";
import path from "node:path";
import { bundledDataDir, workdirPaths, type AtsConfig, type ProgressSink } from "@ats-lora/core";
import { FeedbackStore, importJsonlFile, type FeedbackStats, type ImportReport } from "@ats-lora/feedback";

export interface DemoOptions {
  /** The working folder; a new one is made beside `cwd` when not given. */
  workdir?: string;
  cwd?: string;
  config: AtsConfig;
  progress?: () => ProgressSink;
  now?: Date;
}

export interface DemoResult {
  workdir: string;
  stages: Array<{ name: string; seconds: number }>;
  imports: ImportReport[];
  stats: FeedbackStats;
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
 * pairs) and the store's statistics; build-db, rag, train and eval join as they land.
 */
export function runDemo(options: DemoOptions): DemoResult {
  const workdir = path.resolve(options.workdir ?? newDemoWorkdir(options.cwd ?? process.cwd(), options.now ?? new Date()));
  const paths = workdirPaths(workdir);
  for (const folder of [paths.feedbackDb, paths.vectorStore, paths.models]) fs.mkdirSync(folder, { recursive: true });
  const stages: DemoResult["stages"] = [];
  const timed = <T>(name: string, run: () => T): T => {
    const start = performance.now();
    const result = run();
    stages.push({ name, seconds: Math.round(performance.now() - start) / 1000 });
    return result;
  };

  const store = FeedbackStore.open(paths.feedbackSqlite);
  try {
    const imports = timed("collect import", () =>
      sampleFiles().map((file) =>
        importJsonlFile(store, file, {
          maxProblemsListed: options.config.collect.max_errors_listed,
          progress: options.progress?.(),
        }),
      ),
    );
    const stats = timed("collect stats", () => store.stats(options.config.feedback.min_samples));
    return { workdir, stages, imports, stats };
  } finally {
    store.close();
  }
}
