import path from "node:path";
import { Command } from "commander";
import { createRunContext, InputError, nonNegativeInt, probability, type AtsConfig, type GlobalOptions } from "@ats-lora/core";
import type { TrainingPairsManifest } from "./schema.js";

/** Opens the knowledge store for --rag; the cli wires in the rag package, so build-db does not depend on it. */
export type OpenRetriever = (
  store: string,
  config: AtsConfig,
) => Promise<{ retriever: import("./build.js").PassageRetriever; close(): Promise<void> }>;

/** `ats-lora build-db`: feedback → SFT / DPO / KTO training pairs. */
export function buildDbCommand(options: { openRetriever?: OpenRetriever } = {}): Command {
  const { openRetriever } = options;
  return new Command("build-db")
    .description("turn reviewers' feedback into SFT, DPO and KTO training pairs (feedback_db/training_pairs/)")
    .option("--input <file>", "build from an interactions.jsonl file instead of the feedback store")
    .option("--output <dir>", "where to write (default: feedback_db/training_pairs under the workdir)")
    .option("--strict", "fail when there are fewer reviewed interactions than feedback.min_samples")
    .option("--dedupe-threshold <x>", "cosine similarity at which prompts are near-duplicates (dataset.dedupe_threshold)", probability)
    .option("--seed <n>", "seed of the split hash (dataset.seed)", nonNegativeInt)
    .option("--rag [store]", "add the knowledge store's passages for each query to the prompts (rag.top_k, rag.mode; default store: vector_store under the workdir)")
    .addHelpText(
      "after",
      `
Rows: SFT {prompt, completion} from well-rated responses (mean rating ≥ feedback.good_rating), corrections
(the reviewer's ideal response) and gold pairs; DPO {prompt, chosen, rejected} where an ideal or a better-rated
answer exists for a worse one; KTO {prompt, completion, label} from ratings (≥ good_rating true,
≤ bad_rating false) and ideal responses. Every row also has task and source_ids. Splits are per content
group (identical and near-duplicate prompts share one) and recorded in splits.jsonl, which the next build
into the folder follows: the same resume never sits in two splits, and new data never moves an old prompt.
--output must be new, empty or an earlier build; a folder holding anything else is refused.

Examples:
  $ ats-lora build-db
  $ ats-lora --workdir W build-db --json
  $ ats-lora build-db --input data/samples/interactions.jsonl --output /tmp/pairs --strict
  $ ats-lora rag build --docs data/ats_docs && ats-lora build-db --rag`,
    )
    .action(
      async (
        options: { input?: string; output?: string; strict?: boolean; dedupeThreshold?: number; seed?: number; rag?: boolean | string },
        cmd: Command,
      ) => {
        const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>(), {
          dataset: { dedupe_threshold: options.dedupeThreshold, seed: options.seed },
        });
        const { buildTrainingPairsWithStats } = await import("./build.js");
        const outputDir = options.output ?? context.paths.trainingPairs;
        if (options.rag && !openRetriever) throw new InputError("--rag needs the knowledge store, which this program does not include");
        const knowledge = options.rag ? await openRetriever!(options.rag === true ? context.paths.vectorStore : options.rag, context.config) : undefined;
        const { manifest, run } = await buildTrainingPairsWithStats({
          config: context.config,
          storeFile: options.input === undefined ? context.paths.feedbackSqlite : undefined,
          inputFile: options.input,
          outputDir,
          embeddingCacheFile: path.join(context.paths.cache, "embeddings.sqlite"),
          strict: options.strict,
          progress: context.progress(),
          onWarning: (message) => context.reporter.warn(message),
          retriever: knowledge?.retriever,
        }).finally(() => knowledge?.close());
        context.reporter.info(`embedded ${run.embedded} texts, ${run.cached} more from the cache`);
        context.reporter.info(
          run.splits.previous === "none"
            ? `splits: ${run.splits.new_groups} content groups assigned afresh`
            : `splits: ${run.splits.carried} prompts kept the split the earlier build gave them (${run.splits.previous}), ${run.splits.new_groups} new content groups`,
        );
        context.reporter.result(manifest, () => renderManifest(manifest, outputDir));
      },
    );
}

function renderManifest(manifest: TrainingPairsManifest, outputDir: string): string {
  const row = (name: string, counts: TrainingPairsManifest["counts"]["sft"]): string =>
    `${name.padEnd(6)}${String(counts.train).padStart(7)}${String(counts.val).padStart(6)}${String(counts.test).padStart(6)}${String(counts.total).padStart(7)}`;
  const drift = manifest.drift;
  return [
    `wrote ${outputDir}`,
    `${"".padEnd(6)}${"train".padStart(7)}${"val".padStart(6)}${"test".padStart(6)}${"total".padStart(7)}`,
    row("sft", manifest.counts.sft),
    row("dpo", manifest.counts.dpo),
    row("kto", manifest.counts.kto),
    `from ${manifest.source.reviewed} reviewed interactions and ${manifest.source.gold} gold examples (${manifest.source.unreviewed_skipped} awaiting review skipped)`,
    `near-duplicates: ${manifest.dedupe.removed} removed in ${manifest.dedupe.groups} groups (cosine ≥ ${manifest.dedupe.threshold})`,
    `splits by ${manifest.splits.content_groups} content groups; leakage check: ${manifest.splits.leakage.violations} val/test prompts identical or near-identical to a train prompt, ${manifest.splits.leakage.moved} moved since the earlier build`,
    ...(manifest.rag ? [`prompts include the top ${manifest.rag.top_k} ${manifest.rag.mode} passages from ${manifest.rag.store}`] : []),
    `semantic drift over ${drift.corrections} corrections: mean ${drift.mean ?? "–"}, median ${drift.median ?? "–"}, p90 ${drift.p90 ?? "–"}; ${drift.substantial} substantial (similarity < ${drift.similarity_threshold}), ${drift.refinements} refinements`,
  ].join("\n");
}
