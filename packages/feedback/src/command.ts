import { Command } from "commander";
import { addCommand } from "./commands/add.js";
import { exportCommand } from "./commands/export.js";
import { importCommand } from "./commands/import.js";
import { reviewCommand } from "./commands/review.js";
import { statsCommand } from "./commands/stats.js";

export { renderStats } from "./commands/stats.js";

/** `ats-lora collect`: record interactions and reviewers' feedback. */
export function collectCommand(): Command {
  return new Command("collect")
    .description("record interactions and reviewers' feedback in the feedback store (feedback_db/feedback.sqlite)")
    .addHelpText(
      "after",
      `
Examples:
  $ ats-lora collect import data/samples/interactions.jsonl
  $ ats-lora collect add --task match_score --query "Score this match" --response '{"match_score":0.4}' --rating 2 --ideal '{"match_score":0.7}'
  $ ats-lora collect review
  $ ats-lora collect export --out backup.jsonl --redact
  $ ats-lora collect stats --json`,
    )
    .addCommand(importCommand())
    .addCommand(addCommand())
    .addCommand(reviewCommand())
    .addCommand(exportCommand())
    .addCommand(statsCommand());
}
