import { throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
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
