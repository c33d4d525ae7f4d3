import { Command } from "commander";
import { createRunContext, renderEvents, type GlobalOptions } from "@ats-lora/core";
import type { ExportReport } from "../export.js";

/** `collect export --out FILE`: the store as JSONL, the format `collect import` reads. */
export function exportCommand(): Command {
  return new Command("export")
    .description("write the store as JSONL (interactions with embedded feedback), the format `collect import` reads")
    .requiredOption("--out <file>", "the JSONL file to write")
    .option("--redact", "mask e-mail addresses, phone numbers and profile links in every text field (ids and timestamps kept)")
    .addHelpText(
      "after",
      `
--out is never the store itself, an SQLite file, or an existing file that is not a previous export (exit 2).
README.md ("Redaction") says what --redact catches and what it does not.

Example:
  $ ats-lora --workdir W collect export --out interactions.jsonl --redact`,
    )
    .action(async (options: { out: string; redact?: boolean }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { exportFeedback } = await import("../export-feedback.js");
      const events = renderEvents(context);
      let report: ExportReport;
      try {
        report = await exportFeedback({ out: options.out, redact: options.redact }, context, { onEvent: events.onEvent });
      } finally {
        events.done();
      }
      context.reporter.result(
        report,
        () =>
          `wrote ${report.interactions} interactions with ${report.feedback} feedback to ${report.file}${report.redacted ? " (e-mail addresses, phone numbers and profile links masked)" : ""}`,
      );
    });
}
