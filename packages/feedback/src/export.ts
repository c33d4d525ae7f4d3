import fs from "node:fs";
import path from "node:path";
import { RunError, silentProgress, type ProgressSink } from "@ats-lora/core";
import type { Feedback, Interaction } from "./schema.js";
import { redactValue } from "./redact.js";
import type { FeedbackStore } from "./store.js";

export interface ExportOptions {
  /** Mask e-mail addresses and phone numbers in every text field. */
  redact?: boolean;
  progress?: ProgressSink;
}

export interface ExportReport {
  file: string;
  interactions: number;
  feedback: number;
  redacted: boolean;
}

/** One exported line: the interaction with its feedback embedded (one object, or an array for several). */
export type ExportedLine = Interaction & { feedback?: Omit<Feedback, "interaction_id"> | Array<Omit<Feedback, "interaction_id">> };

export function toExportedLine(interaction: Interaction, feedback: readonly Feedback[]): ExportedLine {
  const reviews = feedback.map(({ interaction_id: _, ...review }) => review);
  const line: ExportedLine = { ...interaction };
  if (reviews.length === 1) line.feedback = reviews[0]!;
  else if (reviews.length > 1) line.feedback = reviews;
  return line;
}

/**
 * Writes the store as interactions.jsonl with embedded feedback, the format `collect import` reads, so
 * import(export(db)) reproduces the database. Written to a temporary file and renamed into place, so a
 * failed export never leaves half a file behind.
 */
export function exportJsonl(store: FeedbackStore, outFile: string, options: ExportOptions = {}): ExportReport {
  const progress = options.progress ?? silentProgress;
  const report: ExportReport = { file: outFile, interactions: 0, feedback: 0, redacted: options.redact ?? false };
  fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  const temporary = `${outFile}.${process.pid}.partial`;
  const total = store.counts().interactions;
  const fd = fs.openSync(temporary, "w");
  progress.start(total, "export");
  try {
    let buffered = "";
    for (const { interaction, feedback } of store.interactions()) {
      let line = toExportedLine(interaction, feedback);
      if (options.redact) line = redactValue(line);
      buffered += `${JSON.stringify(line)}\n`;
      report.interactions += 1;
      report.feedback += feedback.length;
      if (buffered.length > 1 << 20) {
        fs.writeSync(fd, buffered);
        buffered = "";
        progress.update(report.interactions);
      }
    }
    fs.writeSync(fd, buffered);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temporary, outFile);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(temporary, { force: true });
    throw new RunError(`cannot write ${outFile}: ${(error as Error).message}`, { cause: error });
  } finally {
    progress.stop();
  }
  return report;
}
