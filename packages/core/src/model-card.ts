import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { InputError } from "./errors.js";
import { sha256File } from "./hashing.js";
import { FORMATS } from "./training-pairs.js";

/**
 * The record every model folder under models/ carries (model.json): a base model says where it came from and
 * which file it is; an adapter says which base file it was trained on (lineage), so that exporting it or running
 * it against another base is an error that names both. Written by `models pull` and `train`, read by `models
 * list`, `export`, `chat`, `eval` and `serve`.
 */
export const MODEL_CARD_FILE = "model.json";

export const ModelSourceSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("pypi"), package: z.string().min(1), version: z.string().min(1), member: z.string().min(1) }),
  z.object({ kind: z.literal("hub"), id: z.string().min(1), revision: z.string().nullable() }),
  z.object({ kind: z.literal("file"), path: z.string().min(1) }),
]);
export type ModelSource = z.infer<typeof ModelSourceSchema>;

/** How a base model's weights are stored: one GGUF file, an HF folder (config.json + safetensors), or a hub id. */
export const BASE_FORMATS = ["gguf", "hf", "hub"] as const;
export type BaseFormat = (typeof BASE_FORMATS)[number];

export const BaseModelCardSchema = z.object({
  kind: z.literal("base"),
  name: z.string().min(1),
  format: z.enum(["gguf", "hf"]),
  /** The weights, relative to the folder: the .gguf file, or "." for an HF folder. */
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size_bytes: z.number().int().nonnegative(),
  source: ModelSourceSchema,
  license: z.string().nullable(),
  pulled_at: z.string(),
});
export type BaseModelCard = z.infer<typeof BaseModelCardSchema>;

/** A base model as an adapter records it: where it was and the fingerprint of its weights. */
export const BaseReferenceSchema = z.object({
  /** As given to train: an absolute path for local models, the id for hub models. */
  path: z.string().min(1),
  format: z.enum(BASE_FORMATS),
  /** The weights that were hashed: the .gguf file, or the HF folder; null for a hub id. */
  weights: z.string().nullable(),
  /** sha256 of the GGUF file, or of the HF folder's weight files (see fingerprintBase); null for a hub id. */
  sha256: z.string().nullable(),
});
export type BaseReference = z.infer<typeof BaseReferenceSchema>;

/** The training data an adapter was trained on: build-db's folder, its manifest's hash, and its rows. */
export const DatasetReferenceSchema = z.object({
  path: z.string(),
  /** sha256 of the folder's manifest.json; null for data that build-db did not write. */
  manifest_sha256: z.string().nullable(),
  /** The configuration hash build-db recorded in that manifest. */
  config_hash: z.string().nullable(),
  /** Rows of the training format per split. */
  rows: z.record(z.string(), z.number().int()),
});

/** One `eval` of the adapter against another system, as eval records it in the adapter's card. */
export const AdapterEvalSchema = z.object({
  report: z.string(),
  created_at: z.string(),
  against: z.string(),
  /** The other system's model folder or id, when it is a model (its base, its parent, another version). */
  against_model: z.string().nullable(),
  examples: z.number().int(),
  improved: z.number().int(),
  worsened: z.number().int(),
  unclear: z.number().int(),
  verdict: z.string(),
});
export type AdapterEval = z.infer<typeof AdapterEvalSchema>;

/** A run on an MLflow tracking server that recorded this model's training (or its registration). */
export const MlflowRunSchema = z.object({
  uri: z.string(),
  experiment_id: z.string(),
  run_id: z.string(),
  /** The run's page in MLflow's UI. */
  url: z.string(),
  /** Where the run's artifacts are (mlflow-artifacts:/…). */
  artifact_uri: z.string(),
});
export type MlflowRun = z.infer<typeof MlflowRunSchema>;

/** A version of a registered model on MLflow that holds this model. */
export const MlflowVersionSchema = z.object({ registered_model: z.string(), version: z.string() });

export const AdapterCardSchema = z.object({
  kind: z.literal("adapter"),
  base: BaseReferenceSchema,
  training_format: z.enum(FORMATS),
  created_at: z.string(),
  // Lineage (cards written before it lack these fields).
  dataset: DatasetReferenceSchema.optional(),
  /** sha256 of the run's settings (hyperparameters, LoRA settings and the data files' hashes). */
  settings_sha256: z.string().optional(),
  training_args: z.record(z.string(), z.unknown()).optional(),
  /** The run's final metrics (metrics.json). */
  metrics: z.record(z.string(), z.unknown()).optional(),
  /** The production adapter when this one was trained: the version it is meant to replace. */
  parent: z.object({ name: z.string(), path: z.string() }).nullable().optional(),
  evals: z.array(AdapterEvalSchema).optional(),
  /** The MLflow run that logged the training, and the registered versions promotions made of it. */
  mlflow: z.object({ run: MlflowRunSchema, versions: z.array(MlflowVersionSchema) }).optional(),
});
export type AdapterCard = z.infer<typeof AdapterCardSchema>;

/** A trained match-score baseline (`match train`): the TF-IDF matcher's settings, training data and fit. */
export const MatcherCardSchema = z.object({
  kind: z.literal("matcher"),
  method: z.literal("tfidf"),
  /** The fitted model, relative to the folder. */
  file: z.string().min(1),
  created_at: z.string(),
  dataset: DatasetReferenceSchema,
  /** sha256 of the training rows file the vocabulary and idf were fitted on. */
  data_sha256: z.string(),
  settings: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()),
  mlflow: z.object({ run: MlflowRunSchema, versions: z.array(MlflowVersionSchema) }).optional(),
});
export type MatcherCard = z.infer<typeof MatcherCardSchema>;

export const ModelCardSchema = z.discriminatedUnion("kind", [BaseModelCardSchema, AdapterCardSchema, MatcherCardSchema]);
export type ModelCard = z.infer<typeof ModelCardSchema>;

/** The folder's model.json, or undefined when it has none; an unreadable or invalid one is an InputError naming the field. */
export function readModelCard(dir: string): ModelCard | undefined {
  const file = path.join(dir, MODEL_CARD_FILE);
  if (!fs.existsSync(file)) return undefined;
  return readJsonRecord(file, ModelCardSchema, "restore it, or pull or train the model again");
}

/** A JSON file that one schema describes (a model card, the registry): its value, or an InputError naming the file and field. */
export function readJsonRecord<S extends z.ZodType>(file: string, schema: S, hint: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON (${(error as Error).message})`, { hint });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${file}: ${issue.path.join(".") || "(root)"}: ${issue.message}`, { hint });
  }
  return parsed.data;
}

export function writeModelCard(dir: string, card: ModelCard): void {
  const file = path.join(dir, MODEL_CARD_FILE);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(ModelCardSchema.parse(card), null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|gguf)$/;

/**
 * A base model's fingerprint: a .gguf file's sha256; for a folder with a base model.json, that of the file it
 * names; for an HF folder, the sha256 of its weight files' names and hashes (sorted); for anything else (a hub
 * id), no hash.
 */
export function fingerprintBase(base: string): BaseReference {
  if (!fs.existsSync(base)) return { path: base, format: "hub", weights: null, sha256: null };
  const absolute = path.resolve(base);
  if (fs.statSync(absolute).isFile()) {
    if (!absolute.endsWith(".gguf")) throw new InputError(`${base} is a file but not a .gguf model`, { hint: "pass a GGUF file, a model folder or a hub id" });
    return { path: absolute, format: "gguf", weights: absolute, sha256: sha256File(absolute) };
  }
  const card = readModelCard(absolute);
  if (card?.kind === "base" && card.format === "gguf") {
    const weights = path.join(absolute, card.file);
    if (!fs.existsSync(weights)) throw new InputError(`${path.join(absolute, MODEL_CARD_FILE)} names ${card.file}, which is missing`, { hint: `pull it again: ats-lora models pull ${card.name}` });
    return { path: absolute, format: "gguf", weights, sha256: sha256File(weights) };
  }
  const ggufs = fs.readdirSync(absolute).filter((name) => name.endsWith(".gguf"));
  if (!fs.existsSync(path.join(absolute, "config.json")) && ggufs.length === 1) {
    const weights = path.join(absolute, ggufs[0]!);
    return { path: absolute, format: "gguf", weights, sha256: sha256File(weights) };
  }
  const files = fs.readdirSync(absolute).filter((name) => WEIGHT_FILE.test(name)).sort();
  const hash = crypto.createHash("sha256");
  for (const name of files) hash.update(`${name} ${sha256File(path.join(absolute, name))}\n`);
  return { path: absolute, format: "hf", weights: absolute, sha256: files.length > 0 ? hash.digest("hex") : null };
}

/**
 * Refuses to use an adapter with a base other than the one it was trained on: the recorded fingerprint must
 * match the given base's. An adapter without a model.json (trained before lineage was recorded) is not checked.
 */
export function checkAdapterBase(adapterDir: string, base: BaseReference): void {
  const card = readModelCard(adapterDir);
  if (card?.kind !== "adapter") return;
  const recorded = card.base;
  if (recorded.sha256 === null || base.sha256 === null) {
    if (recorded.path !== base.path && recorded.format === "hub") {
      throw new InputError(`the adapter ${adapterDir} was trained on ${recorded.path}, not ${base.path}`, { hint: `use its base: ${recorded.path}` });
    }
    return;
  }
  if (recorded.sha256 !== base.sha256) {
    throw new InputError(`the adapter ${adapterDir} was trained on another base model than ${base.path}`, {
      details: [
        `trained on: ${recorded.weights ?? recorded.path} (sha256 ${recorded.sha256.slice(0, 16)}…)`,
        `given:      ${base.weights ?? base.path} (sha256 ${base.sha256.slice(0, 16)}…)`,
      ],
      hint: `use the base it was trained on (${recorded.path}), or train a new adapter on ${base.path}`,
    });
  }
}

/** The README-style model card of an adapter, from its model.json. */
export function adapterCardMarkdown(name: string, card: AdapterCard, stage: string | null = null): string {
  const lines = [`# ${name}`, "", `LoRA adapter (${card.training_format}) trained ${card.created_at}${stage === null ? "" : `; ${stage}`}.`, ""];
  lines.push("## Lineage", "", `- base: ${card.base.path} (${card.base.format}, sha256 ${card.base.sha256 ?? "none: a hub id"})`);
  if (card.dataset) {
    lines.push(`- training data: ${card.dataset.path} (manifest sha256 ${card.dataset.manifest_sha256 ?? "none"}, build-db config ${card.dataset.config_hash ?? "unknown"}; ${Object.entries(card.dataset.rows).map(([split, rows]) => `${rows} ${split}`).join(", ")})`);
  }
  if (card.settings_sha256) lines.push(`- settings sha256: ${card.settings_sha256}`);
  lines.push(`- parent: ${card.parent ? `${card.parent.name} (the production adapter when it was trained)` : "none"}`);
  if (card.mlflow) {
    lines.push(`- MLflow run: ${card.mlflow.run.url}`);
    for (const version of card.mlflow.versions) lines.push(`- registered: ${version.registered_model} version ${version.version}`);
  }
  if (card.training_args) {
    lines.push("", "## Training", "", "| setting | value |", "| --- | --- |");
    for (const [key, value] of Object.entries(card.training_args)) if (key !== "data") lines.push(`| ${key} | ${JSON.stringify(value)} |`);
  }
  if (card.metrics) {
    lines.push("", "## Metrics", "", "| metric | value |", "| --- | --- |");
    for (const [key, value] of Object.entries(card.metrics)) lines.push(`| ${key} | ${JSON.stringify(value)} |`);
  }
  lines.push("", "## Evaluations", "");
  if (!card.evals || card.evals.length === 0) lines.push("None yet: `ats-lora eval --model models/NAME --base BASE` records one here.");
  else for (const run of card.evals) lines.push(`- ${run.created_at} against ${run.against}: ${run.verdict} (${run.report})`);
  return `${lines.join("\n")}\n`;
}

/** The adapter's README.md: its card in Markdown, rewritten whenever model.json changes (train, eval). */
export function writeAdapterReadme(dir: string, card: AdapterCard, stage: string | null = null): void {
  fs.writeFileSync(path.join(dir, "README.md"), adapterCardMarkdown(path.basename(dir), card, stage));
}
