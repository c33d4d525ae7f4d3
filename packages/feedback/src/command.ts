import { Command, InvalidArgumentError } from "commander";
import { createRunContext, InputError, positiveInt, repeatable, type GlobalOptions } from "@ats-lora/core";
import type { FeedbackStats } from "./index.js";

// The library (and better-sqlite3 with it) loads only when a subcommand runs, so `--help` stays instant.
const library = () => import("./index.js");

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

/** `ats-lora collect`: record interactions and reviewers' feedback. */
export function collectCommand(): Command {
  const command = new Command("collect")
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
    );

  command
    .command("import")
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
      const { FeedbackStore, importJsonlFiles, describeProblems } = await library();
      const store = FeedbackStore.open(context.paths.feedbackSqlite);
      try {
        const result = importJsonlFiles(store, files, {
          skipInvalid: options.skipInvalid,
          update: options.update,
          maxProblemsListed: context.config.collect.max_errors_listed,
          maxLineBytes: context.config.collect.max_line_bytes,
          progress: context.progress({ unit: "bytes" }),
        });
        for (const report of result.files) {
          if (report.skipped_lines > 0) {
            context.reporter.warn(`${report.file}: skipped ${report.skipped_lines} invalid line(s):`, describeProblems(report));
          }
        }
        for (const file of result.rejected) context.reporter.warn(file.error, file.problems);
        const counts = store.counts();
        context.reporter.result({ ...result, store: { file: store.file, ...counts } }, () =>
          [
            ...result.files.map(
              (report) =>
                `${report.file}: ${report.lines} lines; interactions ${report.interactions.inserted} new, ${report.interactions.updated} updated, ${report.interactions.unchanged} unchanged; feedback ${report.feedback.inserted} new, ${report.feedback.updated} updated, ${report.feedback.unchanged} unchanged${report.skipped_lines > 0 ? `; ${report.skipped_lines} skipped` : ""}`,
            ),
            `store ${store.file}: ${counts.interactions} interactions, ${counts.feedback} feedback`,
          ].join("\n"),
        );
        if (result.rejected.length > 0) {
          throw new InputError(
            `${result.rejected.length} of ${files.length} file(s) rejected, nothing of them imported: ${result.rejected.map((item) => item.file).join(", ")}`,
            { hint: "fix the lines listed above, or pass --skip-invalid to import the valid lines" },
          );
        }
      } finally {
        store.close();
      }
    });

  command
    .command("add")
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
    .action(
      async (
        options: {
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
        },
        cmd: Command,
      ) => {
        const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
        const { FeedbackStore, addInteractionWithFeedback } = await library();
        const store = FeedbackStore.open(context.paths.feedbackSqlite);
        try {
          const { interaction, feedback } = addInteractionWithFeedback(
            store,
            {
              query: options.query,
              response: options.response,
              context: options.context,
              task: options.task,
              model: options.model,
              metadata: options.metadata,
            },
            {
              rating: options.rating,
              correct_points: options.correct,
              incorrect_points: options.incorrect,
              ideal_response: options.ideal ?? null,
              reviewer: options.reviewer ?? defaultReviewer(context.config.feedback.reviewer),
            },
          );
          context.reporter.result(
            { interaction_id: interaction.id, feedback_id: feedback.id },
            () => `interaction ${interaction.id}\nfeedback ${feedback.id}`,
          );
        } finally {
          store.close();
        }
      },
    );

  command
    .command("review")
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
      const { FeedbackStore } = await library();
      const { runReviewSession } = await import("./review-session.js");
      const store = FeedbackStore.open(context.paths.feedbackSqlite);
      try {
        const summary = await runReviewSession(store, {
          reviewer: options.reviewer ?? defaultReviewer(context.config.feedback.reviewer),
          task: options.task,
          limit: options.limit,
        });
        context.reporter.result(
          summary,
          () =>
            `reviewed ${summary.reviewed}, skipped ${summary.skipped}; ${summary.remaining} interaction(s) still without feedback`,
        );
        if (summary.ended === "interrupted") process.exitCode = 130;
      } finally {
        store.close();
      }
    });

  command
    .command("export")
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
      const { FeedbackStore, exportJsonl } = await library();
      const store = FeedbackStore.open(context.paths.feedbackSqlite, { readonly: true });
      try {
        const report = exportJsonl(store, options.out, { redact: options.redact, progress: context.progress() });
        for (const note of report.notes) context.reporter.info(note);
        context.reporter.result(
          report,
          () =>
            `wrote ${report.interactions} interactions with ${report.feedback} feedback to ${report.file}${report.redacted ? " (e-mail addresses, phone numbers and profile links masked)" : ""}`,
        );
      } finally {
        store.close();
      }
    });

  command
    .command("stats")
    .description("interactions, feedback, the rating histogram, per-task figures and progress toward the minimum samples")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora --workdir W collect stats --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { FeedbackStore } = await library();
      const store = FeedbackStore.open(context.paths.feedbackSqlite, { readonly: true });
      try {
        const stats = store.stats(context.config.feedback.min_samples);
        context.reporter.result(stats, () => renderStats(stats));
      } finally {
        store.close();
      }
    });

  return command;
}

function defaultReviewer(configured: string | null): string {
  return configured ?? process.env.USER ?? process.env.USERNAME ?? "unknown";
}

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

