import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  abandonBuild,
  buildPrompt,
  commitBuild,
  FORMATS,
  InputError,
  isAtsError,
  RunError,
  silentProgress,
  SPLITS,
  startBuild,
  throwIfAborted,
  trainingPairsFile,
  type AtsConfig,
  type BuildFolderKind,
  type Format,
  type ProgressSink,
  type Split,
  type SplitCounts,
  type StagedBuild,
  type TrainingRows,
} from "@ats-lora/core";
import { cosine, Embedder } from "@ats-lora/embeddings";
import { aggregateFeedback, FeedbackStore, importJsonlFile, type AggregatedFeedback, type Interaction } from "@ats-lora/feedback";
import { driftStats, round4 } from "./drift.js";
import type { DriftRow, TrainingPairsManifest } from "./schema.js";
import { ledgerText, promptHash, readPreviousBuild, SPLITS_LEDGER_FILE, type PreviousBuild } from "./previous.js";
import { assignSplits, checkLeakage, contentKey, type LeakageEntry } from "./split.js";

/** The folder build-db writes: what a rebuild may replace (and nothing else). */
export const TRAINING_PAIRS_KIND: BuildFolderKind = {
  name: "training pairs",
  option: "--output",
  entries: [...FORMATS, "drift.jsonl", "manifest.json", SPLITS_LEDGER_FILE],
};

/** What one run did besides what the manifest records. */
export interface BuildRunStats {
  /** Texts embedded now, and answered from the embeddings cache. */
  embedded: number;
  cached: number;
  splits: {
    /** Where earlier split assignments came from: the output folder's splits.jsonl, an older build's rows, or none. */
    previous: PreviousBuild["from"];
    /** Prompts whose split an earlier build had assigned. */
    carried: number;
    /** Content groups no earlier build had seen. */
    new_groups: number;
    /** Prompts of the earlier build that this build wrote again (compared for `leakage.moved`). */
    compared_with_previous: number;
  };
}

export interface BuildOptions {
  config: AtsConfig;
  /** The feedback store to read… */
  storeFile?: string;
  /** …or an interactions.jsonl file (imported into a store in memory first). */
  inputFile?: string;
  /**
   * The training_pairs folder to write: new, empty, or holding an earlier build (and nothing else), whose
   * splits.jsonl keeps every earlier prompt in its split.
   */
  outputDir: string;
  /** Vectors cache (SQLite); none when undefined. */
  embeddingCacheFile?: string;
  /** Fail instead of warning when there are fewer reviewed interactions than feedback.min_samples. */
  strict?: boolean;
  progress?: ProgressSink;
  /** Called once with each warning as it arises. */
  onWarning?: (message: string) => void;
  /** Aborting stops the build at its next step (between retrievals or embedding batches); the folder is left as it was. */
  signal?: AbortSignal;
  /** Adds knowledge-base passages to every prompt (build-db --rag). */
  retriever?: PassageRetriever;
}

/** Where retrieved passages come from: the rag package's KnowledgeStore, or any other source of passages. */
export interface PassageRetriever {
  /** Recorded in the manifest. */
  describe: { store: string; top_k: number; mode: string };
  /** Passages for one query, best first, as they should appear in the prompt. */
  passages(query: string): Promise<string[]>;
}

/** One interaction that can teach something: gold, or reviewed. */
interface Example {
  interaction: Interaction;
  /** `contentKey` of its task, query and context. */
  key: string;
  review: AggregatedFeedback | undefined;
  gold: boolean;
  prompt: string;
  /** The reviewer's ideal response, when it differs from the model's. */
  correction: string | undefined;
}

type Rows = { [F in Format]: Array<TrainingRows[F]> };

/**
 * Reads the feedback store (or an interactions file) and writes the training_pairs folder: SFT, DPO and KTO rows
 * in DIR/{format}/{split}.jsonl (core's training-pairs contract), drift.jsonl, splits.jsonl and manifest.json,
 * swapped in whole. Deterministic: the same store and configuration give byte-identical files. Returns the
 * manifest and what the run itself did (texts answered from the embeddings cache, splits carried over).
 */
export async function writeTrainingPairs(options: BuildOptions): Promise<{ manifest: TrainingPairsManifest; run: BuildRunStats }> {
  // First, before any long work: recover what a killed run left, and refuse a folder that holds anything else.
  const staged = startBuild(options.outputDir, TRAINING_PAIRS_KIND);
  try {
    const result = await build(options, staged);
    try {
      commitBuild(staged);
    } catch (error) {
      if (isAtsError(error)) throw error;
      throw new RunError(`cannot put the training pairs in place at ${staged.target}: ${(error as Error).message}`, {
        cause: error,
        hint: `the folder ${path.dirname(staged.target)} must be writable; the next build-db recovers what this one left`,
      });
    }
    return result;
  } catch (error) {
    abandonBuild(staged);
    throw error;
  }
}

async function build(options: BuildOptions, staged: StagedBuild): Promise<{ manifest: TrainingPairsManifest; run: BuildRunStats }> {
  const { config } = options;
  const stopIfAborted = (): void => throwIfAborted(options.signal, "build-db", `the output folder ${staged.target} is left as it was`);
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    options.onWarning?.(message);
  };
  stopIfAborted();
  const previous = readPreviousBuild(staged.target, { seed: config.dataset.seed, split: config.dataset.split });
  if (previous.warning !== undefined) warn(previous.warning);

  const { store, cleanup, source } = openSource(options);
  let examples: Example[];
  let unreviewed = 0;
  let storeCounts: { interactions: number; gold: number; reviewed: number };
  try {
    const stats = store.stats(config.feedback.min_samples);
    storeCounts = { interactions: stats.interactions, gold: stats.gold, reviewed: stats.reviewed };
    if (stats.interactions === 0) {
      const what = source.kind === "file" ? `the input file ${source.path} holds no interactions` : `the feedback store ${store.file} is empty`;
      throw new InputError(`${what}: there is nothing to build from`, {
        hint: "import interactions first: ats-lora collect import FILE.jsonl (or pass --input FILE.jsonl)",
      });
    }
    examples = [];
    for (const { interaction, feedback } of store.interactions()) {
      const gold = interaction.origin === "gold";
      const review = aggregateFeedback(feedback);
      if (!gold && !review) {
        unreviewed += 1;
        continue;
      }
      const ideal = review?.ideal_response ?? undefined;
      examples.push({
        interaction,
        key: contentKey(interaction.task, interaction.query, interaction.context),
        review,
        gold,
        prompt: buildPrompt({ task: interaction.task, query: interaction.query, context: interaction.context }, config.prompts),
        correction: ideal !== undefined && ideal.trim() !== interaction.response.trim() ? ideal : undefined,
      });
    }
  } finally {
    cleanup();
  }

  if (options.retriever) {
    // Same prompts as train and eval see with --rag: the interaction's own context, then retrieved passages.
    for (const example of examples) {
      stopIfAborted();
      const { task, query, context } = example.interaction;
      example.prompt = buildPrompt({ task, query, context, retrieved: await options.retriever.passages(query) }, config.prompts);
    }
  }

  if (storeCounts.reviewed < config.feedback.min_samples) {
    const message = `only ${storeCounts.reviewed} reviewed interactions, fewer than feedback.min_samples (${config.feedback.min_samples}); the model may learn little`;
    if (options.strict) {
      throw new InputError(message, { hint: "collect more feedback (ats-lora collect review), or lower feedback.min_samples" });
    }
    warn(message);
  }
  if (examples.length === 0) {
    throw new InputError(`no reviewed interactions or gold examples in ${source.path}: ${unreviewed} interactions await review`, {
      hint: "review some first: ats-lora collect review",
    });
  }

  const threshold = config.dataset.dedupe_threshold;
  // Embed what dedupe and drift need, in one pass (the cache answers texts seen before).
  const embedder = await Embedder.fromConfig(config, { cacheFile: options.embeddingCacheFile });
  const progress = options.progress ?? silentProgress;
  const texts: string[] = [];
  const indexOf = new Map<string, number>();
  const textIndex = (text: string): number => {
    let index = indexOf.get(text);
    if (index === undefined) {
      index = texts.push(text) - 1;
      indexOf.set(text, index);
    }
    return index;
  };
  // A prompt is compared part by part (query, each context passage), each embedded on its own: two
  // candidates for one job share the job text but not the resume, and a long resume is not lost past the
  // embedder's window behind a shared job description.
  const promptParts = examples.map((example) => [example.interaction.query, ...example.interaction.context].map(textIndex));
  const driftTexts = examples.map((example) =>
    example.correction === undefined ? undefined : [textIndex(example.interaction.response), textIndex(example.correction)] as const,
  );
  let embedded;
  try {
    progress.start(texts.length, "embed");
    embedded = await embedder.embed(texts, ({ done }) => {
      stopIfAborted();
      progress.update(done);
    });
  } finally {
    progress.stop();
    await embedder.close();
  }
  if (embedded.truncated > 0) {
    warn(
      `${embedded.truncated} of ${texts.length} texts exceed the embedder's ${embedder.maxSequenceLength} tokens; their similarity (duplicates, drift) is judged on the first ${embedder.maxSequenceLength}`,
    );
  }
  const promptSimilarity = (a: number, b: number): number => {
    const partsA = promptParts[a]!;
    const partsB = promptParts[b]!;
    if (partsA.length !== partsB.length) return 0;
    let similarity = 1;
    for (let part = 0; part < partsA.length && similarity >= threshold; part += 1) {
      similarity = Math.min(similarity, cosine(embedded.vectors[partsA[part]!]!, embedded.vectors[partsB[part]!]!));
    }
    return similarity;
  };

  // Content groups (identical and near-duplicate prompts, transitively) and their splits: see assignSplits.
  // An earlier build's rows name interaction ids (a build from before splits.jsonl): their content keeps its split.
  const earlier = new Map(previous.byKey);
  for (const example of [...examples].sort(compareIds)) {
    const split = previous.byId.get(example.interaction.id);
    if (split !== undefined && !earlier.has(example.key)) earlier.set(example.key, split);
  }
  const assignment = assignSplits(
    examples.map((example) => ({ key: example.key, task: example.interaction.task, prompt: example.prompt })),
    { similarity: promptSimilarity, threshold, previous: earlier, seed: config.dataset.seed, fractions: config.dataset.split },
  );
  for (const conflict of assignment.conflicts) {
    const ids = conflict.members.map((index) => examples[index]!.interaction.id).sort();
    const shown = ids.slice(0, 8).join(", ") + (ids.length > 8 ? `, … (${ids.length} in all)` : "");
    warn(
      `the near-duplicate prompts of ${shown} (task ${examples[conflict.members[0]!]!.interaction.task}) form one content group, but earlier builds put them in ${conflict.splits.join(" and ")}: each keeps its split rather than move, so similar content sits in more than one split; remove the extra copies from the store, or delete ${SPLITS_LEDGER_FILE} in the output folder to reassign (earlier prompts may then move)`,
    );
  }

  // Near-duplicate prompts, per task: best-ranked first, so the best-rated of a group is the one kept. Only
  // prompts of one content group can be near-duplicates, so each is compared within its group.
  const order = examples.map((_, index) => index).sort((a, b) => rank(examples[b]!, examples[a]!));
  const keptBy = new Map<number, number>();
  const duplicatesOf = new Map<number, number[]>();
  const keptPerTask = new Map<string, number[]>();
  for (const index of order) {
    const task = examples[index]!.interaction.task;
    const within = `${assignment.group[index]}\u0000${task}`;
    const kept = keptPerTask.get(within) ?? [];
    const duplicateOf = kept.find((other) => promptSimilarity(index, other) >= threshold);
    if (duplicateOf === undefined) {
      kept.push(index);
      keptPerTask.set(within, kept);
    } else {
      keptBy.set(index, duplicateOf);
      duplicatesOf.set(duplicateOf, [...(duplicatesOf.get(duplicateOf) ?? []), index]);
    }
  }

  // Rows per kept example, plus DPO pairs from a worse-rated near-duplicate against the kept one.
  const rows: Record<Split, Rows> = { train: emptyRows(), val: emptyRows(), test: emptyRows() };
  const byTask: Record<string, Record<Format, number>> = {};
  const drifts: DriftRow[] = [];
  const good = config.feedback.good_rating;
  const bad = config.feedback.bad_rating;
  const keptIndices = [...keptPerTask.values()].flat().sort((a, b) => compareIds(examples[a]!, examples[b]!));
  for (const index of keptIndices) {
    const example = examples[index]!;
    const { interaction, review, correction } = example;
    const split = assignment.splits[index]!;
    const target = rows[split];
    const counts = (byTask[interaction.task] ??= { sft: 0, dpo: 0, kto: 0 });
    const base = { task: interaction.task, source_ids: [interaction.id] };
    const addSft = (completion: string): void => void (target.sft.push({ prompt: example.prompt, completion, ...base }), (counts.sft += 1));
    const addKto = (completion: string, label: boolean): void =>
      void (target.kto.push({ prompt: example.prompt, completion, label, ...base }), (counts.kto += 1));
    const addDpo = (chosen: string, rejected: string, sourceIds: string[]): void =>
      void (target.dpo.push({ prompt: example.prompt, chosen, rejected, task: interaction.task, source_ids: sourceIds }), (counts.dpo += 1));

    // The example's best answer: gold output, the reviewer's correction, or a well-rated response.
    const best = example.gold ? interaction.response : (correction ?? (review!.rating >= good ? interaction.response : undefined));
    if (best !== undefined) addSft(best);
    if (example.gold) {
      addKto(interaction.response, true);
    } else {
      const rating = review!.rating;
      if (correction !== undefined) {
        addDpo(correction, interaction.response, [interaction.id]);
        const [response, ideal] = driftTexts[index]!;
        const similarity = round4(cosine(embedded.vectors[response]!, embedded.vectors[ideal]!));
        drifts.push({
          interaction_id: interaction.id,
          task: interaction.task,
          rating: round4(rating),
          similarity,
          drift: round4(Math.max(0, 1 - similarity)),
          substantial: similarity < config.feedback.similarity_threshold,
        });
      }
      if (rating >= good) addKto(interaction.response, true);
      else if (rating <= bad) addKto(interaction.response, false);
      if (correction !== undefined) addKto(correction, true);
    }

    // A near-duplicate answered worse than the kept example's best answer is a preference pair too.
    if (best !== undefined) {
      const duplicates = (duplicatesOf.get(index) ?? []).map((duplicate) => examples[duplicate]!);
      for (const duplicate of duplicates.sort(compareIds)) {
        const duplicateRating = duplicate.gold ? Infinity : duplicate.review!.rating;
        const keptRating = example.gold ? Infinity : review!.rating;
        if (duplicateRating < keptRating && duplicate.interaction.response.trim() !== best.trim()) {
          addDpo(best, duplicate.interaction.response, [interaction.id, duplicate.interaction.id]);
        }
      }
    }
  }

  const counts = Object.fromEntries(
    FORMATS.map((format) => {
      const perSplit = Object.fromEntries(SPLITS.map((split) => [split, rows[split][format].length])) as Record<Split, number>;
      return [format, { ...perSplit, total: perSplit.train + perSplit.val + perSplit.test } satisfies SplitCounts];
    }),
  ) as Record<Format, SplitCounts>;
  for (const format of FORMATS) {
    if (counts[format].total === 0) warn(`no ${format.toUpperCase()} rows: the feedback gives no example for that format`);
  }
  const removedIds = [...keptBy.keys()].map((index) => examples[index]!.interaction.id).sort();

  // The leakage check, on the rows as written: every held-out prompt against every training prompt.
  const indexOfId = new Map(examples.map((example, index) => [example.interaction.id, index]));
  const entries = new Map<string, LeakageEntry>();
  const promptSplits = new Map<string, Split>();
  for (const split of SPLITS) {
    for (const format of FORMATS) {
      for (const row of rows[split][format]) {
        const index = indexOfId.get(row.source_ids[0]!)!;
        entries.set(`${split}\u0000${index}`, { index, id: row.source_ids[0]!, task: row.task, split, prompt: row.prompt });
        promptSplits.set(promptHash(row.prompt), split);
      }
    }
  }
  const leakage = checkLeakage([...entries.values()], { similarity: promptSimilarity, threshold });
  let comparedWithPrevious = 0;
  let moved = 0;
  for (const [hash, split] of promptSplits) {
    const before = previous.promptSplits.get(hash);
    if (before === undefined) continue;
    comparedWithPrevious += 1;
    if (before !== split) moved += 1;
  }
  if (leakage.violations > 0) {
    warn(
      `${leakage.violations} val or test prompts are identical or near-identical to a training prompt (e.g. ${leakage.examples
        .slice(0, 3)
        .map((example) => `${example.id} in ${example.split} ~ ${example.train_id} in train`)
        .join(", ")}): evaluation on them overstates what the model learnt`,
    );
  }
  if (moved > 0) warn(`${moved} prompts of the earlier build in ${staged.target} are now in another split`);
  const ledger = new Map(previous.byKey);
  examples.forEach((example, index) => ledger.set(example.key, assignment.splits[index]!));

  const manifest: TrainingPairsManifest = {
    format_version: 1,
    source: { ...source, ...storeCounts, unreviewed_skipped: unreviewed },
    config_hash: configHash(config),
    seed: config.dataset.seed,
    split: config.dataset.split,
    thresholds: { good_rating: good, bad_rating: bad, dedupe: threshold, similarity: config.feedback.similarity_threshold },
    embedding: {
      ...embedder.identity,
      texts: texts.length,
      truncated: embedded.truncated,
    },
    counts,
    by_task: Object.fromEntries(Object.entries(byTask).sort(([a], [b]) => a.localeCompare(b))),
    dedupe: { threshold, groups: duplicatesOf.size, removed: removedIds.length, removed_ids: removedIds },
    splits: {
      content_groups: assignment.groups,
      conflicts: assignment.conflicts.length,
      leakage: { ...leakage, moved },
    },
    drift: driftStats(
      drifts.map((row) => row.drift),
      config.feedback.similarity_threshold,
    ),
    min_samples: { target: config.feedback.min_samples, reviewed: storeCounts.reviewed, met: storeCounts.reviewed >= config.feedback.min_samples },
    rag: options.retriever?.describe ?? null,
    warnings,
  };
  stopIfAborted();
  writeFiles(staged.staging, rows, drifts, manifest, ledger);
  return {
    manifest,
    run: {
      embedded: embedded.computed,
      cached: embedded.cached,
      splits: { previous: previous.from, carried: assignment.carried, new_groups: assignment.newGroups, compared_with_previous: comparedWithPrevious },
    },
  };
}

function emptyRows(): Rows {
  return { sft: [], dpo: [], kto: [] };
}

/** Gold first, then the higher mean rating, then a correction, then the newer, then the id (for ties). */
function rank(a: Example, b: Example): number {
  const score = (example: Example): number => (example.gold ? 6 : example.review!.rating);
  return (
    score(a) - score(b) ||
    Number(a.correction !== undefined) - Number(b.correction !== undefined) ||
    a.interaction.created_at.localeCompare(b.interaction.created_at) ||
    b.interaction.id.localeCompare(a.interaction.id)
  );
}

function compareIds(a: Example, b: Example): number {
  return a.interaction.id < b.interaction.id ? -1 : a.interaction.id > b.interaction.id ? 1 : 0;
}

/** Hash of every setting that shapes the output, so a manifest tells whether two builds are comparable. */
function configHash(config: AtsConfig): string {
  const relevant = {
    prompts: config.prompts,
    dataset: config.dataset,
    feedback: { ...config.feedback, reviewer: undefined },
    embeddings: { model: config.embeddings.model, dtype: config.embeddings.dtype },
  };
  return crypto.createHash("sha256").update(JSON.stringify(relevant)).digest("hex").slice(0, 16);
}

function openSource(options: BuildOptions): {
  store: FeedbackStore;
  cleanup: () => void;
  source: { kind: "store" | "file"; path: string };
} {
  if (options.inputFile !== undefined) {
    // In memory: a killed run leaves no copy of the file's resumes behind on disk.
    const store = FeedbackStore.open(":memory:");
    try {
      importJsonlFile(store, options.inputFile, { maxProblemsListed: options.config.collect.max_errors_listed });
    } catch (error) {
      store.close();
      throw error;
    }
    return { store, source: { kind: "file", path: path.resolve(options.inputFile) }, cleanup: () => store.close() };
  }
  const file = options.storeFile;
  if (file === undefined) throw new RunError("build-db needs a feedback store or an --input file");
  if (!fs.existsSync(file)) {
    throw new InputError(`no feedback store at ${file}: there is nothing to build from`, {
      hint: "import interactions first: ats-lora collect import FILE.jsonl (or pass --input FILE.jsonl)",
    });
  }
  const store = FeedbackStore.open(file, { readonly: true });
  return { store, source: { kind: "store", path: file }, cleanup: () => store.close() };
}

/** Writes every file of the build into its staging folder (swapped in by commitBuild). */
function writeFiles(
  staging: string,
  rows: Record<Split, Rows>,
  drifts: DriftRow[],
  manifest: TrainingPairsManifest,
  ledger: ReadonlyMap<string, Split>,
): void {
  try {
    for (const format of FORMATS) {
      for (const split of SPLITS) {
        const file = trainingPairsFile(staging, format, split);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, rows[split][format].map((row) => `${JSON.stringify(row)}\n`).join(""));
      }
    }
    fs.writeFileSync(path.join(staging, "drift.jsonl"), drifts.map((row) => `${JSON.stringify(row)}\n`).join(""));
    fs.writeFileSync(path.join(staging, SPLITS_LEDGER_FILE), ledgerText(ledger));
    fs.writeFileSync(path.join(staging, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (error) {
    throw new RunError(`cannot write the training pairs into ${staging}: ${(error as Error).message}`, {
      cause: error,
      hint: "check the free disk space and the permissions of the output folder's parent",
    });
  }
}
