import path from "node:path";
import { z } from "zod";

/**
 * The training-pairs contract (DESIGN.md): formats, splits, row schemas and the folder layout
 * DIR/{format}/{split}.jsonl. dataset-builder writes through it, trainer and evaluator read through it, and the
 * worker validates rows against the JSON Schema generated from it (training-pairs.schema.json).
 */

/** Fields every row carries besides the TRL ones: trainers ignore them, evaluation uses them. */
const provenance = {
  task: z.string().min(1),
  /** The interactions the row came from (one, or two for a DPO pair across near-duplicates). */
  source_ids: z.array(z.string().min(1)).min(1),
};

/** TRL's prompt-completion format (SFTTrainer). */
export const SftRowSchema = z.strictObject({ prompt: z.string().min(1), completion: z.string().min(1), ...provenance });
/** TRL's preference format (DPOTrainer). */
export const DpoRowSchema = z.strictObject({
  prompt: z.string().min(1),
  chosen: z.string().min(1),
  rejected: z.string().min(1),
  ...provenance,
});
/** TRL's unpaired preference format (KTOTrainer). */
export const KtoRowSchema = z.strictObject({
  prompt: z.string().min(1),
  completion: z.string().min(1),
  label: z.boolean(),
  ...provenance,
});

export type SftRow = z.infer<typeof SftRowSchema>;
export type DpoRow = z.infer<typeof DpoRowSchema>;
export type KtoRow = z.infer<typeof KtoRowSchema>;

export const FORMATS = ["sft", "dpo", "kto"] as const;
export type Format = (typeof FORMATS)[number];
export const SPLITS = ["train", "val", "test"] as const;
export type Split = (typeof SPLITS)[number];

export type SplitCounts = Record<Split | "total", number>;

/** The row schema of each format. */
export const TRAINING_ROW_SCHEMAS = { sft: SftRowSchema, dpo: DpoRowSchema, kto: KtoRowSchema } as const satisfies Record<Format, z.ZodType>;

export interface TrainingRows {
  sft: SftRow;
  dpo: DpoRow;
  kto: KtoRow;
}

/** The columns a trainer reads (TRL's); `task` and `source_ids` ride along for evaluation. */
export const TRAINER_COLUMNS = {
  sft: ["prompt", "completion"],
  dpo: ["prompt", "chosen", "rejected"],
  kto: ["prompt", "completion", "label"],
} as const satisfies { [F in Format]: ReadonlyArray<keyof TrainingRows[F]> };

/** Where each file sits under the training pairs folder: DIR/{format}/{split}.jsonl. */
export const TRAINING_PAIRS_LAYOUT = "{format}/{split}.jsonl";

export function trainingPairsFile(dir: string, format: Format, split: Split): string {
  return path.join(dir, ...TRAINING_PAIRS_LAYOUT.replace("{format}", format).replace("{split}", split).split("/"));
}

/** The JSON Schema of every format's rows, for the worker (written to training-pairs.schema.json). */
export function trainingPairsJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "ats-lora training pairs",
    description: "Rows of DIR/{format}/{split}.jsonl, generated from packages/core/src/training-pairs.ts; do not edit.",
    formats: [...FORMATS],
    splits: [...SPLITS],
    layout: TRAINING_PAIRS_LAYOUT,
    trainer_columns: TRAINER_COLUMNS,
    $defs: Object.fromEntries(FORMATS.map((format) => [format, z.toJSONSchema(TRAINING_ROW_SCHEMAS[format])])),
  };
}
