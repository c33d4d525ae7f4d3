import { throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { addInteractionWithFeedback, type NewFeedback, type NewInteraction } from "./add.js";
import { withFeedbackStore } from "./store.js";

export interface AddFeedbackInput {
  interaction: NewInteraction;
  feedback: NewFeedback;
}

/** What `collect add --json` prints: the ids of the two new records. */
export interface AddFeedbackResult {
  interaction_id: string;
  feedback_id: string;
}

/** `collect add`: records one interaction with one review; writes both or neither. */
export async function addFeedback(
  input: AddFeedbackInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<AddFeedbackResult> {
  throwIfAborted(options.signal, "collect add");
  const { interaction, feedback } = withFeedbackStore(context.paths.feedbackSqlite, {}, (store) =>
    addInteractionWithFeedback(store, input.interaction, input.feedback),
  );
  return { interaction_id: interaction.id, feedback_id: feedback.id };
}
