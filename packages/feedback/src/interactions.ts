import { NotFoundError, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { addInteraction, type NewInteraction } from "./add.js";
import type { Interaction } from "./schema.js";
import { withFeedbackStore, type InteractionStatus, type InteractionWithFeedback } from "./store.js";

/** Stores one model answer that awaits review: what serve records for each completion and for answers made elsewhere. */
export async function recordInteraction(input: NewInteraction, context: OperationContext, options: OperationOptions = {}): Promise<Interaction> {
  throwIfAborted(options.signal, "recording the interaction");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => addInteraction(store, input));
}

export interface ListInteractionsInput {
  status: InteractionStatus;
  task?: string;
  limit?: number;
}

/** Interactions with their feedback, oldest first (a missing store lists none). */
export async function listInteractions(input: ListInteractionsInput, context: OperationContext, options: OperationOptions = {}): Promise<InteractionWithFeedback[]> {
  throwIfAborted(options.signal, "listing interactions");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => store.listInteractions(input));
}

/** One stored interaction with its reviews; an unknown id is a NotFoundError. */
export async function getInteraction(id: string, context: OperationContext, options: OperationOptions = {}): Promise<InteractionWithFeedback> {
  throwIfAborted(options.signal, "reading the interaction");
  return withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => {
    const interaction = store.getInteraction(id);
    if (interaction === undefined) throw new NotFoundError(`no interaction with id ${JSON.stringify(id)}`);
    return { interaction, feedback: store.feedbackFor(id) };
  });
}
