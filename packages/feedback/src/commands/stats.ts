import { Command } from "commander";
import { createRunContext, type GlobalOptions } from "@ats-lora/core";
import type { ModelRatings } from "../feedback-stats.js";
import type { FeedbackStats } from "../store.js";

/** `collect stats`: what the feedback store holds, and how far it is from enough to train. */
export function statsCommand(): Command {
  return new Command("stats")
    .description("interactions, feedback, the rating histogram, per-task figures and progress toward the minimum samples")
    .option("--by-model", "also each model version's mean rating with a 95% bootstrap interval, and each pair compared (an A/B split's versions)")
    .option("--task <task>", "with --by-model: only this task's interactions")
    .addHelpText(
      "after",
      `
Examples:
  $ ats-lora --workdir W collect stats --json
  $ ats-lora --workdir W collect stats --by-model --task resume_parse`,
    )
    .action(async (flags: { byModel?: boolean; task?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { feedbackStats, modelRatings } = await import("../feedback-stats.js");
      const stats = await feedbackStats({}, context);
      if (flags.byModel !== true) {
        context.reporter.result(stats, () => renderStats(stats));
        return;
      }
      const byModel = await modelRatings({ task: flags.task }, context);
      context.reporter.result({ ...stats, by_model: byModel }, () => `${renderStats(stats)}\n\n${renderModelRatings(byModel)}`);
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

/** `collect stats --by-model`'s table: each version's ratings, then each pair's difference. */
export function renderModelRatings(ratings: ModelRatings): string {
  const interval = (low: number | null, high: number | null): string => (low === null || high === null ? "" : `[${low.toFixed(2)}, ${high.toFixed(2)}]`);
  const lines = [
    `ratings by model${ratings.task === null ? "" : ` (${ratings.task})`}: mean rating of each reviewed interaction, 95% bootstrap interval`,
    `${"model".padEnd(28)}${"inter.".padStart(8)}${"reviewed".padStart(10)}${"mean".padStart(7)}  interval`,
    ...ratings.models.map((row) => `${row.model.padEnd(28)}${String(row.interactions).padStart(8)}${String(row.reviewed).padStart(10)}${(row.mean_rating === null ? "–" : row.mean_rating.toFixed(2)).padStart(7)}  ${interval(row.low, row.high)}`),
  ];
  if (ratings.comparisons.length > 0) lines.push("", ...ratings.comparisons.map((pair) => `${pair.b} − ${pair.a}: ${pair.delta >= 0 ? "+" : ""}${pair.delta.toFixed(2)} ${interval(pair.low, pair.high)} ${pair.verdict}`));
  return lines.join("\n");
}
