import fs from "node:fs";
import { Command } from "commander";
import { createRunContext, InputError, positiveInt, renderEvents, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora match train|score`: the section-weighted TF-IDF matcher, the match-score baseline, as a trained model. */
export function matchCommand(): Command {
  const match = new Command("match").description("the TF-IDF resume–job matcher (the match-score baseline): train it on the training rows, score a resume against a job");

  match
    .command("train")
    .description("fit the matcher (unigrams and bigrams, English stop words, 5,000 terms; skills 0.4, experience 0.4, education 0.2) on the training rows' match-score pairs and save it as models/tfidf_matcher_vN")
    .option("--data <file_or_dir>", "training rows: a JSONL file or build-db's output folder (default: the workdir's training pairs)")
    .option("--output-dir <dir>", "where the matcher goes (default: models/tfidf_matcher_vN with the next free N)")
    .option("--max-features <n>", "vocabulary size: the most frequent terms", positiveInt)
    .addHelpText("after", "\nWith tracking.mlflow_uri (or MLFLOW_TRACKING_URI) set, the run is logged to MLflow and registered as a version of\ntracking.matcher_registered_model with the alias current.\n\nExamples:\n  $ ats-lora match train\n  $ ats-lora --workdir W match train --json")
    .action(async (options: { data?: string; outputDir?: string; maxFeatures?: number }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { trainMatcher } = await import("./matcher.js");
      const events = renderEvents(context);
      const result = await trainMatcher({ data: options.data, outputDir: options.outputDir, settings: options.maxFeatures ? { max_features: options.maxFeatures } : undefined }, context, { onEvent: events.onEvent }).finally(events.done);
      context.reporter.result(result, () => {
        const { metrics } = result.card;
        const agreement = (name: string, value: unknown) => {
          const fit = value as { pairs: number; spearman: number; mae: number } | null;
          return fit ? `${name}: Spearman ${fit.spearman.toFixed(3)}, MAE ${fit.mae.toFixed(3)} on ${fit.pairs} pairs` : `${name}: no scored pairs`;
        };
        const lines = [`${result.name}: ${String(metrics.vocabulary)} terms from ${String(metrics.documents)} documents (${result.path})`, agreement("training rows", metrics.train), agreement("validation rows", metrics.val)];
        if (result.mlflow) lines.push(`MLflow: ${result.mlflow.registered_model} version ${result.mlflow.version} (alias ${result.mlflow.alias})`);
        return lines.join("\n");
      });
    });

  match
    .command("score")
    .description("score a resume against a job posting with a trained matcher: the weighted score and each section's cosine")
    .requiredOption("--resume <file>", "the resume as text")
    .requiredOption("--job <file>", "the job posting as text")
    .option("--matcher <name_or_dir>", "the matcher (default: the newest under models/)")
    .addHelpText("after", "\nExamples:\n  $ ats-lora match score --resume resume.txt --job posting.txt\n  $ ats-lora match score --resume resume.txt --job posting.txt --matcher tfidf_matcher_v2 --json")
    .action(async (options: { resume: string; job: string; matcher?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { scoreMatch } = await import("./matcher.js");
      const read = (file: string, flag: string) => {
        if (!fs.existsSync(file)) throw new InputError(`${flag} ${file}: no such file`);
        return fs.readFileSync(file, "utf8");
      };
      const scored = scoreMatch({ resume: read(options.resume, "--resume"), job: read(options.job, "--job"), matcher: options.matcher }, context);
      context.reporter.result(scored, () =>
        [`score ${scored.score.toFixed(3)} (${scored.matcher})`, ...Object.entries(scored.sections).map(([section, value]) => `  ${section}: ${value.toFixed(3)}`)].join("\n"),
      );
    });
  return match;
}
