import { ConflictError, NotFoundError, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { addReview, type NewFeedback } from "./add.js";
import type { Feedback, Interaction } from "./schema.js";
import { withFeedbackStore, type InteractionWithFeedback } from "./store.js";

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

export interface ReviewerQueueInput {
  /** Whose queue: interactions without a review of theirs. */
  reviewer: string;
  task?: string;
  limit?: number;
}

/**
 * A reviewer's queue (the web page's): the interactions they have not reviewed, those nobody has reviewed first,
 * each with the reviews others left.
 */
export async function reviewerQueue(input: ReviewerQueueInput, context: OperationContext, options: OperationOptions = {}): Promise<{ items: InteractionWithFeedback[]; pending: number }> {
  throwIfAborted(options.signal, "the review queue");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => store.reviewerQueue(input));
}

export interface WithdrawReviewInput {
  feedback_id: string;
  /** When given, only this reviewer's own review is withdrawn. */
  reviewer?: string;
}

/** Takes back one review (the web page's undo): its row is deleted, the interaction stays. */
export async function withdrawReview(input: WithdrawReviewInput, context: OperationContext, options: OperationOptions = {}): Promise<Feedback> {
  throwIfAborted(options.signal, "withdrawing the review");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) =>
    store.transaction(() => {
      const feedback = store.getFeedback(input.feedback_id);
      if (feedback === undefined) throw new NotFoundError(`no feedback with id ${JSON.stringify(input.feedback_id)}`);
      if (input.reviewer !== undefined && feedback.reviewer !== input.reviewer) {
        throw new ConflictError(`the feedback ${input.feedback_id} is ${feedback.reviewer}'s review, not ${input.reviewer}'s`, { hint: "only its reviewer takes a review back" });
      }
      store.deleteFeedback(feedback.id);
      return feedback;
    }),
  );
}
