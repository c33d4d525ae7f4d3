import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { InputError, readRecords, SftRowSchema, trainingPairsFile } from "@ats-lora/core";

// The held-out set: the examples eval scores systems on (build-db's SFT test split, or a file of that shape),
// the predictions files scored against them, and the interaction metadata some metrics need.

const sft = SftRowSchema.shape;

/** A field of the training-data contract without its checks (a minimum length): same type, looser content. */
function unchecked<T extends z.ZodType>(field: T): T {
  return field.clone({ ...field.def, checks: [] });
}

/**
 * One held-out example: an SFT row of the training-data contract (prompt, completion, task, source_ids), read as
 * loosely as a file written by hand may be: the reference may be empty, the task defaults, the sources are
 * optional, and other fields are dropped. `metadata` carries what some metrics need beyond the text (a
 * follow-up's `vague_part`); for build-db's rows the runner fills it from the feedback store through `source_ids`.
 */
export const EvalExampleSchema = z.object({
  prompt: sft.prompt,
  completion: unchecked(sft.completion),
  task: sft.task.default("default"),
  source_ids: z.array(unchecked(sft.source_ids.element)).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type EvalExample = z.infer<typeof EvalExampleSchema> & { line: number };

/** Outputs produced elsewhere (an API model, another system), scored with the same metrics. */
export const PredictionRowSchema = z.strictObject({
  prompt: z.string().min(1),
  prediction: z.string(),
  /** Optional timings, for latency and tokens/s of systems measured elsewhere. */
  seconds: z.number().nonnegative().optional(),
  tokens: z.number().int().nonnegative().optional(),
});
export type PredictionRow = z.infer<typeof PredictionRowSchema>;

/** The test file a path names: a JSONL file, or build-db's output folder (its sft/test.jsonl), or a folder holding test.jsonl. */
export function resolveTestFile(fileOrDir: string): string {
  if (!fs.existsSync(fileOrDir)) {
    throw new InputError(`no test data at ${fileOrDir}`, { hint: "run ats-lora build-db first, or pass --test-data FILE.jsonl" });
  }
  if (!fs.statSync(fileOrDir).isDirectory()) return fileOrDir;
  for (const candidate of [trainingPairsFile(fileOrDir, "sft", "test"), path.join(fileOrDir, "test.jsonl")]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new InputError(`${fileOrDir} holds neither sft/test.jsonl nor test.jsonl`, { hint: "pass the JSONL file itself with --test-data" });
}

export function readTestData(file: string): EvalExample[] {
  return readRecords(file, EvalExampleSchema, { what: "test data" }).map((record) => ({ ...record.value, line: record.lineNumber }));
}

/** The metadata of one interaction (the feedback store, looked up by id). */
export type MetadataLookup = (interactionId: string) => Record<string, unknown> | undefined;

/** Rows without metadata take the first non-empty metadata of their source interactions (build-db's `source_ids`). */
export function attachMetadata(examples: EvalExample[], lookup: MetadataLookup): void {
  for (const example of examples) {
    if (example.metadata) continue;
    const metadata = (example.source_ids ?? []).map(lookup).find((found) => found !== undefined && Object.keys(found).length > 0);
    if (metadata) example.metadata = metadata;
  }
}

/**
 * Pairs a predictions file with the examples by prompt. A prompt the test data holds twice takes the file's
 * rows for it in order. A missing prompt, or a row whose prompt no example has (or has fewer times), is an
 * error naming it: scoring a partial file would compare systems on different examples.
 */
export function matchPredictions(file: string, examples: readonly EvalExample[], options: { allowExtra?: boolean } = {}): PredictionRow[] {
  const records = readRecords(file, PredictionRowSchema, { what: "predictions" });
  const byPrompt = new Map<string, Array<{ line: number; row: PredictionRow }>>();
  for (const record of records) {
    const queue = byPrompt.get(record.value.prompt) ?? [];
    queue.push({ line: record.lineNumber, row: record.value });
    byPrompt.set(record.value.prompt, queue);
  }
  const problems: string[] = [];
  const rows = examples.map((example) => {
    const next = byPrompt.get(example.prompt)?.shift();
    if (!next) problems.push(`test line ${example.line}: no prediction for the prompt ${preview(example.prompt)}`);
    return next?.row ?? { prompt: example.prompt, prediction: "" };
  });
  // Under --limit the file still holds the rows of the examples left out: those are not extra.
  for (const queue of options.allowExtra ? [] : byPrompt.values()) {
    for (const extra of queue) problems.push(`${file}:${extra.line}: prompt: no test example has the prompt ${preview(extra.row.prompt)}`);
  }
  if (problems.length > 0) {
    throw new InputError(`${file} does not match the test data one to one (${problems.length} problem(s))`, {
      details: [...problems.slice(0, 20), ...(problems.length > 20 ? [`… and ${problems.length - 20} more`] : [])],
      hint: "give exactly one {\"prompt\", \"prediction\"} line per test example, with the prompt copied verbatim",
    });
  }
  return rows;
}

/** A recognisable piece of a prompt: what follows its first paragraph (the shared instruction). */
function preview(prompt: string): string {
  const paragraph = prompt.indexOf("\n\n");
  const flat = (paragraph === -1 ? prompt : prompt.slice(paragraph)).replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > 90 ? `${flat.slice(0, 90)}…` : flat);
}
