import { Command } from "commander";
import { createRunContext, InputError, renderEvents, type GlobalOptions } from "@ats-lora/core";
import type { ImportFeedbackResult } from "../import-feedback.js";

/** `collect import FILES…`: JSONL files of interactions, feedback and gold pairs into the feedback store. */
export function importCommand(): Command {
  return new Command("import")
    .description("import JSONL files of interactions (optionally with embedded feedback) or {input, output} gold pairs")
    .argument("<files...>", "JSONL files; - reads standard input")
    .option("--skip-invalid", "import the valid lines of a file with invalid ones, and list the skipped lines")
    .option("--update", "replace stored records whose id reappears with different content")
    .addHelpText(
      "after",
      `
Each file is imported in one transaction: a file with any invalid line writes nothing (exit 2) and every bad
line is listed as FILE:LINE: field: problem. Importing the same file again changes nothing. Lines longer
than collect.max_line_bytes are invalid.

Examples:
  $ ats-lora --workdir W collect import data/samples/interactions.jsonl data/samples/gold_pairs.jsonl
  $ gunzip -c interactions.jsonl.gz | ats-lora --workdir W collect import -`,
    )
    .action(async (files: string[], options: { skipInvalid?: boolean; update?: boolean }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      // The library (and better-sqlite3 with it) loads only when the command runs, so `--help` stays instant.
      const { importFeedback } = await import("../import-feedback.js");
      const events = renderEvents(context);
      let result: ImportFeedbackResult;
      try {
        result = await importFeedback({ files, skipInvalid: options.skipInvalid, update: options.update }, context, {
          onEvent: events.onEvent,
        });
      } finally {
        events.done();
      }
      context.reporter.result(result, () => renderImport(result));
      if (result.rejected.length > 0) {
        throw new InputError(
          `${result.rejected.length} of ${files.length} file(s) rejected, nothing of them imported: ${result.rejected.map((item) => item.file).join(", ")}`,
          { hint: "fix the lines listed above, or pass --skip-invalid to import the valid lines" },
        );
      }
    });
}

function renderImport(result: ImportFeedbackResult): string {
  return [
    ...result.files.map(
      (report) =>
        `${report.file}: ${report.lines} lines; interactions ${report.interactions.inserted} new, ${report.interactions.updated} updated, ${report.interactions.unchanged} unchanged; feedback ${report.feedback.inserted} new, ${report.feedback.updated} updated, ${report.feedback.unchanged} unchanged${report.skipped_lines > 0 ? `; ${report.skipped_lines} skipped` : ""}`,
    ),
    `store ${result.store.file}: ${result.store.interactions} interactions, ${result.store.feedback} feedback`,
  ].join("\n");
}
