import { Command } from "commander";
import { createRunContext, type GlobalOptions } from "@ats-lora/core";
import type { FeedbackStats } from "../store.js";

/** `collect stats`: what the feedback store holds, and how far it is from enough to train. */
export function statsCommand(): Command {
  return new Command("stats")
    .description("interactions, feedback, the rating histogram, per-task figures and progress toward the minimum samples")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora --workdir W collect stats --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { feedbackStats } = await import("../feedback-stats.js");
      const stats = await feedbackStats({}, context);
      context.reporter.result(stats, () => renderStats(stats));
    });
}

/** The human rendering of `collect stats` (the demo prints it too). */
export function renderStats(stats: FeedbackStats): string {
  const histogram = (h: FeedbackStats["rating_histogram"]): string =>
    (["1", "2", "3", "4", "5"] as const).map((rating) => `${rating}:${h[rating]}`).join(" ");
  const lines = [
    `interactions ${stats.interactions} (gold examples ${stats.gold}), feedback ${stats.feedback} from ${stats.reviewers} reviewer(s)`,
    `reviewed ${stats.reviewed}, awaiting review ${stats.pending_review}, coverage ${(stats.coverage * 100).toFixed(1)}%, reviewed by several ${stats.multi_reviewed}, with ideal response ${stats.with_ideal_response}`,
    `ratings ${histogram(stats.rating_histogram)}, mean ${stats.mean_rating ?? "–"}`,
    `minimum samples: ${stats.min_samples.reviewed}/${stats.min_samples.target} reviewed interactions (${(stats.min_samples.progress * 100).toFixed(0)}%)${stats.min_samples.met ? " — enough to train" : ""}`,
    "",
    `${"task".padEnd(22)}${"inter.".padStart(8)}${"gold".padStart(6)}${"feedback".padStart(10)}${"reviewed".padStart(10)}${"pending".padStart(9)}${"mean".padStart(7)}  ratings 1-5`,
  ];
  for (const [task, row] of Object.entries(stats.by_task)) {
    lines.push(
      `${task.padEnd(22)}${String(row.interactions).padStart(8)}${String(row.gold).padStart(6)}${String(row.feedback).padStart(10)}${String(row.reviewed).padStart(10)}${String(row.pending_review).padStart(9)}${String(row.mean_rating ?? "–").padStart(7)}  ${histogram(row.rating_histogram)}`,
    );
  }
  return lines.join("\n");
}
