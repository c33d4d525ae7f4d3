import { Command } from "commander";
import { createRunContext, InputError, positiveInt, type GlobalOptions } from "@ats-lora/core";
import { defaultReviewer } from "./reviewer.js";

/** `collect review`: the interactions without feedback, one by one in the terminal. */
export function reviewCommand(): Command {
  return new Command("review")
    .description("review, in the terminal, the interactions that have no feedback yet; each answer is saved at once")
    .option("--task <name>", "only this task")
    .option("--limit <n>", "at most this many interactions", positiveInt)
    .option("--reviewer <name>", "who is reviewing (default: feedback.reviewer in the config, else $USER)")
    .addHelpText(
      "after",
      `
Shows the task, query, context and response, then asks for the rating (1-5, s to skip, q to quit), the
correct points, the incorrect points and the ideal response. Needs an interactive terminal; scripts use
\`collect add\` or \`collect import\`.

Example:
  $ ats-lora collect review --task resume_parse --reviewer p.sharma`,
    )
    .action(async (options: { task?: string; limit?: number; reviewer?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      if (!process.stdin.isTTY || !process.stderr.isTTY) {
        throw new InputError("collect review needs an interactive terminal (stdin and stderr are not a TTY)", {
          hint: "in scripts, record feedback with `ats-lora collect add …` or `ats-lora collect import FILE.jsonl`",
        });
      }
      const { runReviewSession } = await import("./review-session.js");
      const summary = await runReviewSession(context, {
        reviewer: options.reviewer ?? defaultReviewer(context.config.feedback.reviewer),
        task: options.task,
        limit: options.limit,
      });
      context.reporter.result(
        summary,
        () => `reviewed ${summary.reviewed}, skipped ${summary.skipped}; ${summary.remaining} interaction(s) still without feedback`,
      );
      if (summary.ended === "interrupted") process.exitCode = 130;
    });
}
