import { Command } from "commander";
import { createRunContext, nonNegativeInt, probability, renderEvents, withCtrlC, type GlobalOptions } from "@ats-lora/core";
import type { OpenRetriever } from "./build-training-pairs.js";
import type { TrainingPairsManifest } from "./schema.js";

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
        const { buildTrainingPairs } = await import("./build-training-pairs.js");
        const input = {
          inputFile: options.input,
          outputDir: options.output,
          strict: options.strict,
          rag: options.rag ? { store: options.rag === true ? undefined : options.rag } : undefined,
        };
        const events = renderEvents(context);
        const manifest = await withCtrlC(
          (signal) => buildTrainingPairs(input, context, { signal, onEvent: events.onEvent, openRetriever }),
          () => context.reporter.info("stopping: the training pairs are left as they were (Ctrl-C again to quit at once)"),
        ).finally(() => events.done());
        const outputDir = options.output ?? context.paths.trainingPairs;
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
