import { bootstrapInterval, independentBootstrap, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { withFeedbackStore, type FeedbackStats } from "./store.js";

/** `collect stats` takes nothing but the context: the store is the workdir's, the target feedback.min_samples. */
export type FeedbackStatsInput = Record<string, never>;

/**
 * `collect stats`: interactions, feedback, the rating histogram, per-task figures and progress toward
 * feedback.min_samples reviewed interactions. Opens the store read-only (a missing store is a RunError).
 */
export async function feedbackStats(
  _input: FeedbackStatsInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<FeedbackStats> {
  throwIfAborted(options.signal, "collect stats");
  return withFeedbackStore(context.paths.feedbackSqlite, { readonly: true }, (store) =>
    store.stats(context.config.feedback.min_samples),
  );
}

export interface ModelRatingsInput {
  /** Only this task's interactions. */
  task?: string;
  /** Bootstrap resamples (default 2,000) and their seed (default 0). */
  samples?: number;
  seed?: number;
}

export interface ModelRatings {
  task: string | null;
  /** Per model that answered: its interactions, those reviewed, the mean rating and its 95% bootstrap interval. */
  models: Array<{ model: string; interactions: number; reviewed: number; mean_rating: number | null; low: number | null; high: number | null }>;
  /**
   * Each pair of models with at least 2 reviewed interactions each: the difference of mean ratings (b − a) with a
   * 95% bootstrap interval over the two independent groups, "better" / "worse" when it excludes zero.
   */
  comparisons: Array<{ a: string; b: string; delta: number; low: number; high: number; verdict: "better" | "worse" | "unclear" }>;
}

const mean = (values: readonly number[]): number => (values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length);
const round = (value: number): number => Math.round(value * 1000) / 1000;

/**
 * `collect stats --by-model`: the reviewers' ratings of each model version that answered (an A/B split of live
 * traffic through `serve` records which one did), with bootstrap intervals, and each pair compared.
 */
export async function modelRatings(input: ModelRatingsInput, context: OperationContext, options: OperationOptions = {}): Promise<ModelRatings> {
  throwIfAborted(options.signal, "collect stats");
  const groups = withFeedbackStore(context.paths.feedbackSqlite, { readonly: true }, (store) => store.ratingsByModel({ task: input.task }));
  const settings = { samples: input.samples ?? 2000, seed: input.seed ?? 0 };
  const models = groups.map(({ model, interactions, ratings }) => {
    const interval = ratings.length >= 2 ? bootstrapInterval(ratings, mean, settings) : undefined;
    return {
      model,
      interactions,
      reviewed: ratings.length,
      mean_rating: ratings.length === 0 ? null : round(mean(ratings)),
      low: interval === undefined ? null : round(interval.low),
      high: interval === undefined ? null : round(interval.high),
    };
  });
  const compared = groups.filter((group) => group.ratings.length >= 2).sort((x, y) => y.ratings.length - x.ratings.length || x.model.localeCompare(y.model));
  const comparisons: ModelRatings["comparisons"] = [];
  for (let i = 0; i < compared.length; i += 1) {
    for (let j = i + 1; j < compared.length; j += 1) {
      const [a, b] = [compared[i]!, compared[j]!];
      const interval = independentBootstrap(a.ratings, b.ratings, mean, settings);
      const verdict = interval.low > 0 ? "better" : interval.high < 0 ? "worse" : "unclear";
      comparisons.push({ a: a.model, b: b.model, delta: round(interval.delta), low: round(interval.low), high: round(interval.high), verdict });
    }
  }
  return { task: input.task ?? null, models, comparisons };
}
