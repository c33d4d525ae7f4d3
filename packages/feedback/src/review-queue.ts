import { throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { addReview, type NewFeedback } from "./add.js";
import type { Feedback, Interaction } from "./schema.js";
import { withFeedbackStore } from "./store.js";

// The store side of `collect review` (its prompts are the command's): what to review next, and saving a review.

export interface ReviewQueueInput {
  /** Only this task's interactions. */
  task?: string;
  /** List at most this many (0 lists none and only counts); all when absent. */
  limit?: number;
}

export interface ReviewQueue {
  /** The model's interactions that no reviewer has rated yet, oldest first, up to the limit. */
  interactions: Interaction[];
  /** How many of them wait for a review in all, the limit aside. */
  pending: number;
}

/** The interactions waiting for a review. */
export async function reviewQueue(
  input: ReviewQueueInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<ReviewQueue> {
  throwIfAborted(options.signal, "collect review");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => ({
    interactions: store.pendingReview({ task: input.task, limit: input.limit }),
    pending: store.pendingReviewCount({ task: input.task }),
  }));
}

export interface SaveReviewInput {
  /** The stored interaction reviewed. */
  interaction_id: string;
  review: NewFeedback;
}

/** Saves one review of a stored interaction at once; an unknown interaction id is an InputError. */
export async function saveReview(
  input: SaveReviewInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<Feedback> {
  throwIfAborted(options.signal, "collect review");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => addReview(store, input.interaction_id, input.review));
}
