import type { Format, Split, SplitCounts } from "@ats-lora/core";

/** drift.jsonl: one line per corrected interaction (a reviewer's ideal response differs from the model's). */
export interface DriftRow {
  interaction_id: string;
  task: string;
  /** Mean rating of the reviews. */
  rating: number;
  /** Cosine similarity of the model's response and the ideal response. */
  similarity: number;
  /** 1 − similarity. */
  drift: number;
  /** similarity < feedback.similarity_threshold: the model said something substantially different. */
  substantial: boolean;
}

export interface DriftStats {
  /** Corrected interactions: a reviewer's ideal response differs from the model's. */
  corrections: number;
  mean: number | null;
  median: number | null;
  p90: number | null;
  max: number | null;
  /** Counts of drift (1 − cosine of response and ideal) in bins of 0.1 from 0 to 1 (the last bin holds ≥ 0.9). */
  histogram: Array<{ from: number; to: number; count: number }>;
  /** feedback.similarity_threshold: corrections below it said something substantially different. */
  similarity_threshold: number;
  /** Corrections whose response–ideal similarity is below the threshold (substantial errors). */
  substantial: number;
  /** Corrections at or above it (refinements of an answer that was roughly right). */
  refinements: number;
}

/** feedback_db/training_pairs/manifest.json */
export interface TrainingPairsManifest {
  format_version: 1;
  source: { kind: "store" | "file"; path: string; interactions: number; gold: number; reviewed: number; unreviewed_skipped: number };
  config_hash: string;
  seed: number;
  split: { train: number; val: number; test: number };
  thresholds: { good_rating: number; bad_rating: number; dedupe: number; similarity: number };
  embedding: { model: string; dtype: string; dimension: number; max_seq_length: number; texts: number; truncated: number };
  counts: Record<Format, SplitCounts>;
  by_task: Record<string, Record<Format, number>>;
  dedupe: { threshold: number; groups: number; removed: number; removed_ids: string[] };
  /**
   * Splits by content group: identical and near-duplicate prompts (the dedupe rule, transitively) share one
   * split, remembered across builds in splits.jsonl, so adding data never moves a prompt.
   */
  splits: {
    /** Content groups among the gold and reviewed examples. */
    content_groups: number;
    /** Groups whose members earlier builds had put in more than one split: each member kept its split (warned). */
    conflicts: number;
    /** Computed on the rows as written (expected: 0 violations, 0 moved). */
    leakage: {
      definition: string;
      /** Distinct prompts compared, per split. */
      compared: { train: number; val: number; test: number };
      /** Val or test prompts identical or near-identical to a train prompt. */
      violations: number;
      /** The first of them: the held-out prompt's interaction, the train prompt's, and their similarity. */
      examples: Array<{ split: Split; id: string; train_id: string; similarity: number }>;
      /** Prompts of the earlier build in the output folder that this build wrote into another split. */
      moved: number;
    };
  };
  drift: DriftStats;
  min_samples: { target: number; reviewed: number; met: boolean };
  /** The knowledge store whose passages were added to the prompts (build-db --rag), or null. */
  rag: { store: string; top_k: number; mode: string } | null;
  warnings: string[];
}
