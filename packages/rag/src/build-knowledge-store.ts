import { progressEvents, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { buildStore, type BuildStoreReport } from "./store.js";

export interface BuildKnowledgeStoreInput {
  /** The folder of documents, read recursively. */
  docsDir: string;
  /** The store folder; the workdir's vector_store unless given. */
  outputDir?: string;
  /** Start over instead of reusing unchanged files' chunks and vectors. */
  rebuild?: boolean;
}

/**
 * `rag build`: chunks, embeds and indexes a folder of documents into the knowledge store (buildStore), with the
 * workdir's embeddings cache and the configured index (rag.index). Progress is the embedding; warnings name a
 * chunk size above the embedder's limit and the files that were skipped. Aborting leaves the store as it was.
 */
export async function buildKnowledgeStore(
  input: BuildKnowledgeStoreInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<BuildStoreReport> {
  const { onEvent, signal } = options;
  const report = await buildStore({
    docsDir: input.docsDir,
    outputDir: input.outputDir ?? context.paths.vectorStore,
    config: context.config,
    rebuild: input.rebuild,
    embeddingCacheFile: context.paths.embeddingCache,
    progress: progressEvents(onEvent),
    onWarning: (message) => onEvent?.({ type: "warning", message }),
    signal,
  });
  if (report.skipped.length > 0) {
    onEvent?.({
      type: "warning",
      message: `${report.skipped.length} file(s) skipped:`,
      details: report.skipped.map((skip) => `${skip.path}: ${skip.reason}`),
    });
  }
  return report;
}
