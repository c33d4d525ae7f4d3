import fs from "node:fs";
import path from "node:path";
import { InputError, readJsonl } from "@ats-lora/core";
import { DpoRowSchema, KtoRowSchema, SftRowSchema, type Format } from "@ats-lora/dataset-builder";

const SCHEMAS = { sft: SftRowSchema, dpo: DpoRowSchema, kto: KtoRowSchema } as const;

export interface TrainingDataSummary {
  dir: string;
  format: Format;
  train: number;
  val: number;
}

/**
 * Checks the training data before any tensor moves: {format}/train.jsonl (required, non-empty) and
 * val.jsonl (optional) of build-db's layout, every row against its TRL schema, naming FILE:LINE: field.
 */
export function checkTrainingData(dir: string, format: Format, maxProblems = 20): TrainingDataSummary {
  const folder = path.join(dir, format);
  const trainFile = path.join(folder, "train.jsonl");
  if (!fs.existsSync(trainFile)) {
    throw new InputError(`no ${format} training data: ${trainFile} does not exist`, {
      hint: fs.existsSync(dir) ? `build it with: ats-lora build-db --output ${dir}` : "run ats-lora build-db first, or pass --training_data DIR",
    });
  }
  const problems: string[] = [];
  let problemCount = 0;
  const counts = { train: 0, val: 0 };
  for (const split of ["train", "val"] as const) {
    const file = path.join(folder, `${split}.jsonl`);
    if (!fs.existsSync(file)) continue;
    for (const line of readJsonl(file)) {
      counts[split] += 1;
      const issues = line.ok
        ? (SCHEMAS[format].safeParse(line.value).error?.issues.map(
            (issue) => `${issue.path.join(".") || "(line)"}: ${issue.code === "unrecognized_keys" ? `unknown field ${issue.keys.join(", ")}` : issue.message}`,
          ) ?? [])
        : [`(line): ${line.problem}`];
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
