import { Command, InvalidArgumentError } from "commander";
import { createRunContext, repeatable, type GlobalOptions } from "@ats-lora/core";
import { defaultReviewer } from "./reviewer.js";

interface AddOptions {
  query: string;
  response: string;
  rating: number;
  context?: string[];
  task: string;
  model: string;
  metadata?: Record<string, unknown>;
  correct?: string[];
  incorrect?: string[];
  ideal?: string;
  reviewer?: string;
}

/** `collect add`: one interaction with its feedback, from flags (for scripts). */
export function addCommand(): Command {
  return new Command("add")
    .description("record one interaction with its feedback (for scripts); prints the new ids")
    .requiredOption("--query <text>", "what the model was asked")
    .requiredOption("--response <text>", "what the model answered")
    .requiredOption("--rating <n>", "the reviewer's rating, 1 (wrong) to 5 (perfect)", parseRating)
    .option("--context <text>", "a context passage given to the model (repeatable)", repeatable)
    .option("--task <name>", "resume_analysis | resume_parse | interview_question | match_score | any name", "general")
    .option("--model <name>", "the model that answered", "unknown")
    .option("--metadata <json>", "a JSON object of extra fields", parseJsonObject)
    .option("--correct <text>", "something the response got right (repeatable)", repeatable)
    .option("--incorrect <text>", "something the response got wrong (repeatable)", repeatable)
    .option("--ideal <text>", "the response the reviewer wants")
    .option("--reviewer <name>", "who reviewed (default: feedback.reviewer in the config, else $USER)")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora collect add --task interview_question --query "Ask a follow-up about the migration" \\
      --response "Tell me more." --rating 2 --incorrect "too generic" \\
      --ideal "Which part of the Oracle-to-PostgreSQL migration did you own, and how did you verify the data?"`,
    )
    .action(async (options: AddOptions, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { addFeedback } = await import("../add-feedback.js");
      const added = await addFeedback(
        {
          interaction: {
            query: options.query,
            response: options.response,
            context: options.context,
            task: options.task,
            model: options.model,
            metadata: options.metadata,
          },
          feedback: {
            rating: options.rating,
            correct_points: options.correct,
            incorrect_points: options.incorrect,
            ideal_response: options.ideal ?? null,
            reviewer: options.reviewer ?? defaultReviewer(context.config.feedback.reviewer),
          },
        },
        context,
      );
      context.reporter.result(added, () => `interaction ${added.interaction_id}\nfeedback ${added.feedback_id}`);
    });
}

function parseRating(value: string): number {
  if (!/^[1-5]$/.test(value.trim())) throw new InvalidArgumentError("must be a whole number from 1 to 5");
  return Number(value);
}

function parseJsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError("must be a JSON object, e.g. '{\"role\":\"Data Scientist\"}'");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new InvalidArgumentError("must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}
