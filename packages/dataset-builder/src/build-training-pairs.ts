import { InputError, progressEvents, type AtsConfig, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { writeTrainingPairs, type PassageRetriever } from "./build.js";
import type { TrainingPairsManifest } from "./schema.js";

/** Opens the knowledge store for --rag; the cli wires in the rag package, so build-db does not depend on it. */
export type OpenRetriever = (store: string, config: AtsConfig) => Promise<{ retriever: PassageRetriever; close(): Promise<void> }>;

export interface BuildTrainingPairsInput {
  /** Build from this interactions.jsonl file (imported in memory) instead of the workdir's feedback store. */
  inputFile?: string;
  /** The training_pairs folder; the workdir's feedback_db/training_pairs unless given. */
  outputDir?: string;
  /** Fail instead of warning when there are fewer reviewed interactions than feedback.min_samples. */
  strict?: boolean;
  /** Add the knowledge store's passages to every prompt (build-db --rag); the workdir's vector_store unless given. */
  rag?: { store?: string };
}

export interface BuildTrainingPairsOptions extends OperationOptions {
  /** How `rag` opens the knowledge store (the cli passes the rag package's); without it `rag` is refused. */
  openRetriever?: OpenRetriever;
}

/**
 * `build-db`: reviewers' feedback → SFT, DPO and KTO training pairs (writeTrainingPairs), with the workdir's
 * embeddings cache. Progress is the embedding; warnings arise as the build goes; two notes at the end say what
 * the embeddings cache answered and where the splits came from. Aborting leaves the output folder as it was.
 */
export async function buildTrainingPairs(
  input: BuildTrainingPairsInput,
  context: OperationContext,
  options: BuildTrainingPairsOptions = {},
): Promise<TrainingPairsManifest> {
  const { onEvent, signal, openRetriever } = options;
  if (input.rag && !openRetriever) throw new InputError("--rag needs the knowledge store, which this program does not include");
  const knowledge = input.rag ? await openRetriever!(input.rag.store ?? context.paths.vectorStore, context.config) : undefined;
  const { manifest, run } = await writeTrainingPairs({
    config: context.config,
    storeFile: input.inputFile === undefined ? context.paths.feedbackSqlite : undefined,
    inputFile: input.inputFile,
    outputDir: input.outputDir ?? context.paths.trainingPairs,
    embeddingCacheFile: context.paths.embeddingCache,
    strict: input.strict,
    progress: progressEvents(onEvent),
    onWarning: (message) => onEvent?.({ type: "warning", message }),
    retriever: knowledge?.retriever,
    signal,
  }).finally(() => knowledge?.close());
  onEvent?.({ type: "info", message: `embedded ${run.embedded} texts, ${run.cached} more from the cache` });
  onEvent?.({
    type: "info",
    message:
      run.splits.previous === "none"
        ? `splits: ${run.splits.new_groups} content groups assigned afresh`
        : `splits: ${run.splits.carried} prompts kept the split the earlier build gave them (${run.splits.previous}), ${run.splits.new_groups} new content groups`,
  });
  return manifest;
}
