import { progressEvents, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { describeProblems, importJsonlFiles, type ImportReport, type RejectedFile } from "./import.js";
import { withFeedbackStore } from "./store.js";

export interface ImportFeedbackInput {
  /** JSONL files of interactions (optionally with embedded feedback) or {input, output} gold pairs; `-` is stdin. */
  files: readonly string[];
  /** Import the valid lines of a file that has invalid ones (they are listed in its report). */
  skipInvalid?: boolean;
  /** Replace stored records whose id reappears with different content (otherwise that line is invalid). */
  update?: boolean;
}

/** What `collect import --json` prints. */
export interface ImportFeedbackResult {
  files: ImportReport[];
  /** Files with invalid lines, of which nothing was imported. */
  rejected: RejectedFile[];
  /** The store after the import. */
  store: { file: string; interactions: number; feedback: number };
}

/**
 * `collect import`: imports each file into the feedback store in its own transaction. A file with invalid lines
 * is rejected whole (unless skipInvalid) and the others are still imported: rejected files are in the result, not
 * thrown. Each rejected file, and each file's skipped lines, is also a warning event; progress is in bytes.
 */
export async function importFeedback(
  input: ImportFeedbackInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<ImportFeedbackResult> {
  // The import is synchronous work (one transaction per file): an abort can only stop it before it starts.
  throwIfAborted(options.signal, "collect import");
  const result = withFeedbackStore(context.paths.feedbackSqlite, {}, (store) => {
    const { files, rejected } = importJsonlFiles(store, input.files, {
      skipInvalid: input.skipInvalid,
      update: input.update,
      maxProblemsListed: context.config.collect.max_errors_listed,
      maxLineBytes: context.config.collect.max_line_bytes,
      progress: progressEvents(options.onEvent, "bytes"),
    });
    return { files, rejected, store: { file: store.file, ...store.counts() } };
  });
  for (const report of result.files) {
    if (report.skipped_lines > 0) {
      options.onEvent?.({
        type: "warning",
        message: `${report.file}: skipped ${report.skipped_lines} invalid line(s):`,
        details: describeProblems(report),
      });
    }
  }
  for (const file of result.rejected) options.onEvent?.({ type: "warning", message: file.error, details: file.problems });
  return result;
}
