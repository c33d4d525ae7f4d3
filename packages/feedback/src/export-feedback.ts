import { progressEvents, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { exportJsonl, type ExportReport } from "./export.js";
import { withFeedbackStore } from "./store.js";

export interface ExportFeedbackInput {
  /** The JSONL file to write (never the store itself, an SQLite file, or a file that is not a previous export). */
  out: string;
  /** Mask e-mail addresses, phone numbers and profile links in every text field (ids and timestamps kept). */
  redact?: boolean;
}

/**
 * `collect export`: writes the feedback store as JSONL (interactions with embedded feedback), the format
 * `collect import` reads. Each of the report's notes (e.g. leftovers of a killed export removed) is also an
 * info event, sent once the file is written.
 */
export async function exportFeedback(
  input: ExportFeedbackInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<ExportReport> {
  throwIfAborted(options.signal, "collect export");
  const report = withFeedbackStore(context.paths.feedbackSqlite, { readonly: true }, (store) =>
    exportJsonl(store, input.out, { redact: input.redact, progress: progressEvents(options.onEvent) }),
  );
  for (const note of report.notes) options.onEvent?.({ type: "info", message: note });
  return report;
}
