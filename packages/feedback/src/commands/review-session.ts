import { editor, input } from "@inquirer/prompts";
import type { OperationContext } from "@ats-lora/core";
import { reviewQueue, saveReview } from "../review-queue.js";
import type { Interaction } from "../schema.js";

export interface ReviewOptions {
  reviewer: string;
  task?: string;
  limit?: number;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

/** What `collect review --json` prints. */
export interface ReviewSummary {
  reviewed: number;
  skipped: number;
  /** Interactions still without feedback when the session ended. */
  remaining: number;
  /** How the session ended: every pending interaction seen, the user quit, or the user interrupted (Ctrl-C). */
  ended: "done" | "quit" | "interrupted";
  feedback_ids: string[];
}

/**
 * Interactive review in a terminal: shows each interaction that has no feedback yet and asks for the rating,
 * correct and incorrect points and the ideal response. Each answer is saved (saveReview) as soon as it is complete.
 */
export async function runReviewSession(context: OperationContext, options: ReviewOptions): Promise<ReviewSummary> {
  const output = options.output ?? process.stderr;
  const prompts = { input: options.input ?? process.stdin, output, clearPromptOnDone: false };
  const { interactions: pending } = await reviewQueue({ task: options.task, limit: options.limit }, context);
  const summary: ReviewSummary = { reviewed: 0, skipped: 0, remaining: 0, ended: "done", feedback_ids: [] };
  const write = (text: string): void => void output.write(`${text}\n`);

  if (pending.length === 0) write("Nothing to review: every interaction has feedback.");
  try {
    for (const [index, interaction] of pending.entries()) {
      write(renderInteraction(interaction, index + 1, pending.length));
      const ratingAnswer = await input(
        {
          message: "Rating 1-5 (s = skip, q = quit):",
          validate: (value) => /^[1-5sq]$/i.test(value.trim()) || "type a whole number from 1 to 5, s to skip or q to quit",
        },
        prompts,
      );
      const choice = ratingAnswer.trim().toLowerCase();
      if (choice === "q") {
        summary.ended = "quit";
        break;
      }
      if (choice === "s") {
        summary.skipped += 1;
        continue;
      }
      const correct = await askPoints("Correct point", prompts);
      const incorrect = await askPoints("Incorrect point", prompts);
      const ideal = await askIdealResponse(prompts);
      const feedback = await saveReview(
        {
          interaction_id: interaction.id,
          review: { rating: Number(choice), correct_points: correct, incorrect_points: incorrect, ideal_response: ideal, reviewer: options.reviewer },
        },
        context,
      );
      summary.reviewed += 1;
      summary.feedback_ids.push(feedback.id);
      write(`saved ${feedback.id} (rating ${feedback.rating}) for ${interaction.id}\n`);
    }
  } catch (error) {
    // Ctrl-C inside a prompt: what was answered before is already saved.
    if ((error as Error).name !== "ExitPromptError") throw error;
    summary.ended = "interrupted";
  }
  summary.remaining = (await reviewQueue({ task: options.task, limit: 0 }, context)).pending;
  return summary;
}

async function askPoints(label: string, prompts: Parameters<typeof input>[1]): Promise<string[]> {
  const points: string[] = [];
  for (;;) {
    const answer = (await input({ message: `${label} ${points.length + 1} (Enter to finish):` }, prompts)).trim();
    if (answer === "") return points;
    points.push(answer);
  }
}

/** One line typed at the prompt, or several written in $VISUAL / $EDITOR (for JSON answers and the like). */
async function askIdealResponse(prompts: Parameters<typeof input>[1]): Promise<string | null> {
  const typed = (
    await input({ message: "Ideal response (Enter for none, e to write it in $EDITOR):" }, prompts)
  ).trim();
  if (typed === "") return null;
  if (typed.toLowerCase() !== "e") return typed;
  const written = (
    await editor({ message: "Ideal response", waitForUserInput: false, file: { postfix: ".txt" } }, prompts)
  ).trim();
  return written === "" ? null : written;
}

function renderInteraction(interaction: Interaction, position: number, total: number): string {
  const rule = "─".repeat(72);
  const lines = [
    rule,
    `[${position}/${total}] ${interaction.id} · task ${interaction.task} · model ${interaction.model} · ${interaction.created_at}`,
    rule,
    "QUERY",
    indent(interaction.query),
  ];
  interaction.context.forEach((item, index) => lines.push(`CONTEXT ${index + 1}/${interaction.context.length}`, indent(item)));
  lines.push("RESPONSE", indent(interaction.response), rule);
  return lines.join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
}
