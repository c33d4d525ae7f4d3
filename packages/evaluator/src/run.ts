import { Embedder } from "@ats-lora/embeddings";
import { evaluate, type EvalReport, type EvaluateOptions } from "./evaluate.js";
import { writeReport, type ReportFiles } from "./report.js";

export interface RunEvaluationOptions extends Omit<EvaluateOptions, "embedder"> {
  /** Where report.json, report.md, report.html and predictions.jsonl go. */
  outDir: string;
  /** The embedder's on-disk cache (the workdir's .cache/embeddings.sqlite). */
  embeddingCacheFile?: string;
}

/** `evaluate` with the configured embedder, writing the report: what `eval` and `demo` both run. */
export async function runEvaluation(options: RunEvaluationOptions): Promise<{ report: EvalReport; files: ReportFiles }> {
  const { config } = options;
  const embedder = await Embedder.load({
    model: config.embeddings.model,
    dtype: config.embeddings.dtype,
    batchSize: config.embeddings.batch_size,
    cacheFile: options.embeddingCacheFile,
  });
  try {
    const { report, examples } = await evaluate({ ...options, embedder });
    return { report, files: writeReport(report, examples, options.outDir) };
  } finally {
    await embedder.close();
  }
}
