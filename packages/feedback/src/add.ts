import crypto from "node:crypto";
import { InputError, NotFoundError, taskAnswerSchema } from "@ats-lora/core";
import type { z } from "zod";
import { DEFAULT_MODEL, DEFAULT_REVIEWER, DEFAULT_TASK, FeedbackSchema, InteractionSchema, type Feedback, type Interaction } from "./schema.js";
import type { FeedbackStore } from "./store.js";

export interface NewInteraction {
  /** Given by a caller that names the interaction before it is stored (serve streams the id first); new otherwise. */
  id?: string;
  query: string;
  response: string;
  context?: string[];
  task?: string;
  model?: string;
  metadata?: Record<string, unknown>;
}

export interface NewFeedback {
  rating: number;
  correct_points?: string[];
  incorrect_points?: string[];
  ideal_response?: string | null;
  reviewer?: string;
}

/** Records one interaction with one review (collect add). Validates both; writes both or neither. */
export function addInteractionWithFeedback(
  store: FeedbackStore,
  input: NewInteraction,
  review: NewFeedback,
  now: Date = new Date(),
): { interaction: Interaction; feedback: Feedback } {
  const interaction = newInteractionRecord(input, now);
  const feedback = validate(FeedbackSchema, "feedback", newFeedbackRecord(interaction.id, review, now));
  store.transaction(() => {
    store.insertInteraction(interaction);
    store.insertFeedback(feedback);
  });
  return { interaction, feedback };
}

/** Records one model answer that awaits review (serve's completions, and answers produced elsewhere). */
export function addInteraction(store: FeedbackStore, input: NewInteraction, now: Date = new Date()): Interaction {
  const interaction = newInteractionRecord(input, now);
  store.transaction(() => store.insertInteraction(interaction));
  return interaction;
}

/** A new interaction id: what addInteraction gives one that comes without. */
export function newInteractionId(): string {
  return `ix_${crypto.randomUUID()}`;
}

function newInteractionRecord(input: NewInteraction, now: Date): Interaction {
  return validate(InteractionSchema, "interaction", {
    id: input.id ?? newInteractionId(),
    created_at: now.toISOString(),
    task: input.task ?? DEFAULT_TASK,
    query: input.query,
    context: input.context ?? [],
    response: input.response,
    model: input.model ?? DEFAULT_MODEL,
    metadata: input.metadata ?? {},
    origin: "model",
  });
}

/** Records one review of a stored interaction (collect review). */
export function addReview(store: FeedbackStore, interactionId: string, review: NewFeedback, now: Date = new Date()): Feedback {
  const interaction = store.getInteraction(interactionId);
  if (!interaction) throw new NotFoundError(`no interaction with id ${JSON.stringify(interactionId)}`);
  checkIdealResponse(interaction.task, review.ideal_response);
  const feedback = validate(FeedbackSchema, "feedback", newFeedbackRecord(interactionId, review, now));
  store.transaction(() => store.insertFeedback(feedback));
  return feedback;
}

/** A task that answers in JSON takes an ideal response in JSON: build-db trains on it as the answer. */
function checkIdealResponse(task: string, ideal: string | null | undefined): void {
  if (ideal === null || ideal === undefined || taskAnswerSchema(task) === undefined) return;
  try {
    JSON.parse(ideal);
  } catch (error) {
    throw new InputError(`the ideal response of a ${task} answer must be JSON, as the task answers`, {
      details: [`ideal_response: ${(error as Error).message}`],
      hint: "correct the JSON, or leave the ideal response out",
    });
  }
}

function newFeedbackRecord(interactionId: string, review: NewFeedback, now: Date): unknown {
  return {
    id: `fb_${crypto.randomUUID()}`,
    interaction_id: interactionId,
    rating: review.rating,
    correct_points: review.correct_points ?? [],
    incorrect_points: review.incorrect_points ?? [],
    ideal_response: review.ideal_response ?? null,
    reviewer: review.reviewer ?? DEFAULT_REVIEWER,
    created_at: now.toISOString(),
  };
}

function validate<T>(schema: z.ZodType<T>, what: string, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new InputError(`invalid ${what}`, {
    details: parsed.error.issues.map((issue) => `${issue.path.map(String).join(".")}: ${issue.message}`),
  });
}
