import fs from "node:fs";
import path from "node:path";
import { InputError, readJsonl, TRAINING_ROW_SCHEMAS, trainingPairsFile, type Format, type TrainingRows } from "@ats-lora/core";

export interface TrainingDataSummary {
  dir: string;
  format: Format;
  train: number;
  val: number;
}

/**
 * The texts each format's trainer learns from, read off core's typed rows: a field dropped or renamed in the
 * training-pairs contract stops this build instead of a training run.
 */
const TRAINED_TEXTS: { [F in Format]: (row: TrainingRows[F]) => Record<string, string> } = {
  sft: (row) => ({ prompt: row.prompt, completion: row.completion }),
  dpo: (row) => ({ prompt: row.prompt, chosen: row.chosen, rejected: row.rejected }),
  kto: (row) => ({ prompt: row.prompt, completion: row.completion }),
};

/** What is wrong with one parsed line: the contract's issues, else a trained text that is only whitespace. */
function rowProblems(format: Format, value: unknown): string[] {
  const parsed = TRAINING_ROW_SCHEMAS[format].safeParse(value);
  if (!parsed.success) {
    return parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "(line)"}: ${issue.code === "unrecognized_keys" ? `unknown field ${issue.keys.join(", ")}` : issue.message}`,
    );
  }
  // The row parsed with `format`'s schema, so it is that format's row; TypeScript cannot tie the two together.
  const texts = (TRAINED_TEXTS[format] as (row: TrainingRows[Format]) => Record<string, string>)(parsed.data);
  return Object.entries(texts)
    .filter(([, text]) => text.trim() === "")
    .map(([field]) => `${field}: only whitespace, nothing to learn from`);
}

/**
 * Checks the training data before any tensor moves: {format}/train.jsonl (required, non-empty) and
 * val.jsonl (optional) of build-db's layout, every row against its TRL schema, naming FILE:LINE: field.
 */
export function checkTrainingData(dir: string, format: Format, maxProblems = 20): TrainingDataSummary {
  const trainFile = trainingPairsFile(dir, format, "train");
  const folder = path.dirname(trainFile);
  if (!fs.existsSync(trainFile)) {
    throw new InputError(`no ${format} training data: ${trainFile} does not exist`, {
      hint: fs.existsSync(dir) ? `build it with: ats-lora build-db --output ${dir}` : "run ats-lora build-db first, or pass --training_data DIR",
    });
  }
  const problems: string[] = [];
  let problemCount = 0;
  const counts = { train: 0, val: 0 };
  for (const split of ["train", "val"] as const) {
    const file = trainingPairsFile(dir, format, split);
    if (!fs.existsSync(file)) continue;
    for (const line of readJsonl(file)) {
      counts[split] += 1;
      const issues = line.ok ? rowProblems(format, line.value) : [`(line): ${line.problem}`];
      for (const issue of issues) {
        problemCount += 1;
        if (problems.length < maxProblems) problems.push(`${file}:${line.lineNumber}: ${issue}`);
      }
    }
  }
  if (problemCount > 0) {
    throw new InputError(`the ${format} training data in ${folder} has ${problemCount} problem(s)`, {
      details: [...problems, ...(problemCount > problems.length ? [`… and ${problemCount - problems.length} more`] : [])],
      hint: "rebuild it with ats-lora build-db, or fix the lines above",
    });
  }
  if (counts.train === 0) {
    throw new InputError(`no ${format} training rows: ${trainFile} is empty`, {
      hint: format === "sft" ? "collect more feedback and run build-db" : `the feedback gives no ${format} rows; try --format sft`,
    });
  }
  return { dir, format, ...counts };
}
