import fs from "node:fs";
import { isMap, isSeq, LineCounter, parseDocument, parse as parseYaml } from "yaml";
import { z } from "zod";
import { InputError } from "./errors.js";
import { defaultConfigPath } from "./paths.js";
import { FORMATS } from "./training-pairs.js";

const probability = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
/** How the base model's weights are loaded (model.quantization, demo.quantization, train --quantization). */
/** What generates during eval: node-llama-cpp where the base is a GGUF (auto), or always one of the two. */
export const EVAL_ENGINES = ["auto", "llama", "worker"] as const;
export type EvalEngine = (typeof EVAL_ENGINES)[number];

export const QUANTIZATION_MODES = ["auto", "4bit", "8bit", "none"] as const;
/** Which positions an SFT run projects through the LM head on a CPU: the answers' only, or every one (TRL's way). */
const LM_HEAD_POSITIONS = z.enum(["answers", "all"]);

/** Attention kernels: PyTorch's scaled-dot-product attention, the plain one, or the flash-attn package's. */
export const ATTN_IMPLEMENTATIONS = ["sdpa", "eager", "flash_attention_2"] as const;
/** How several processes share a run: DDP (a whole model each) or FSDP (sharded across them). */
export const STRATEGIES = ["ddp", "fsdp"] as const;

/**
 * The whole configuration. Every key is required here: configs/default.yaml supplies each default, and the
 * layers above it (--config, environment, flags) override single keys.
 */
export const ConfigSchema = z.strictObject({
  model: z.strictObject({
    base: z.string().min(1),
    quantization: z.enum(QUANTIZATION_MODES),
    bnb_4bit_quant_type: z.enum(["nf4", "fp4"]),
    bnb_4bit_double_quant: z.boolean(),
    compute_dtype: z.enum(["bfloat16", "float16", "float32"]),
  }),
  lora: z.strictObject({
    r: positiveInt,
    alpha: z.number().positive(),
    dropout: z.number().min(0).lt(1),
    target_modules: z.array(z.string().min(1)).min(1),
    /** Adapters only on the last N transformer layers (PEFT's layers_to_transform); null: every layer. */
    top_layers: positiveInt.nullable(),
    bias: z.enum(["none", "all", "lora_only"]),
  }),
  training: z.strictObject({
    format: z.enum(FORMATS),
    learning_rate: z.number().positive(),
    batch_size: positiveInt,
    grad_accum: positiveInt,
    /** null: the epochs decide how long the run is. */
    max_steps: positiveInt.nullable(),
    epochs: z.number().positive(),
    warmup_steps: nonNegativeInt,
    lr_scheduler: z.enum(["cosine", "linear", "constant"]),
    max_seq_length: positiveInt,
    packing: z.boolean(),
    gradient_checkpointing: z.boolean(),
    attn_implementation: z.enum(ATTN_IMPLEMENTATIONS),
    lm_head_positions: LM_HEAD_POSITIONS,
    /** Processes on this machine (one per GPU) under torchrun; 1: the worker trains alone. */
    devices: positiveInt,
    strategy: z.enum(STRATEGIES),
    save_steps: positiveInt,
    logging_steps: positiveInt,
    seed: nonNegativeInt,
    regression_field: z.string().min(1).nullable(),
    regression_weight: z.number().positive(),
    regression_loss: z.enum(["mse", "mae", "huber"]),
    /** Stop when the validation loss has not improved for this many epoch-end evaluations (null: off). */
    early_stopping_patience: positiveInt.nullable(),
  }),
  embeddings: z.strictObject({
    model: z.string().min(1),
    dtype: z.enum(["int8", "fp32"]),
    batch_size: positiveInt,
  }),
  rag: z.strictObject({
    chunk_size: positiveInt,
    chunk_overlap: nonNegativeInt,
    top_k: positiveInt,
    mode: z.enum(["dense", "lexical", "hybrid"]),
    index: z.string().min(1),
    hnsw_above: positiveInt,
    ef_search: positiveInt,
  }),
  feedback: z.strictObject({
    min_samples: nonNegativeInt,
    good_rating: z.number().int().min(1).max(5),
    bad_rating: z.number().int().min(1).max(5),
    similarity_threshold: probability,
    reviewer: z.string().min(1).nullable(),
  }),
  collect: z.strictObject({
    max_errors_listed: positiveInt,
    max_line_bytes: positiveInt,
  }),
  dataset: z.strictObject({
    split: z
      .strictObject({ train: probability, val: probability, test: probability })
      .refine((split) => Math.abs(split.train + split.val + split.test - 1) < 1e-9, {
        error: "train + val + test must add up to 1",
      }),
    seed: nonNegativeInt,
    dedupe_threshold: probability,
  }),
  prompts: z.strictObject({
    template: z
      .string()
      .refine((template) => template.includes("{instruction}") && template.includes("{query}") && template.includes("{context}"), {
        error: "must contain the placeholders {instruction}, {context} and {query}",
      }),
    context_section: z.string().refine((section) => section.includes("{items}"), { error: "must contain {items}" }),
    context_separator: z.string(),
    instructions: z
      .record(z.string().min(1), z.string().min(1))
      .refine((instructions) => typeof instructions.default === "string", { error: "needs a `default` instruction" }),
  }),
  eval: z.strictObject({
    max_new_tokens: positiveInt,
    /** Per task (JSON answers need more room than a question); tasks not listed use max_new_tokens. */
    max_new_tokens_by_task: z.record(z.string().min(1), positiveInt),
    engine: z.enum(EVAL_ENGINES),
    /** Prompts node-llama-cpp generates at once (context sequences, decoded in one batch). */
    sequences: positiveInt,
    bootstrap_samples: positiveInt,
    /** Also generate each model's JSON tasks under their answer schema (node-llama-cpp grammars), as `<name>+schema`. */
    json_schema: z.boolean(),
    /** Score each reference's loss under each model (the report's loss and perplexity). */
    reference_loss: z.boolean(),
  }),
  serve: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    /** The base to serve when --model is not given (a name in models/, a folder or a .gguf); null: the one pulled base. */
    model: z.string().min(1).nullable(),
    sequences: positiveInt,
    context_size: positiveInt,
    max_tokens: positiveInt,
    body_limit_bytes: positiveInt,
    store_interactions: z.boolean(),
    /** The model id whose requests are routed: an A/B split (ab), else the task's model (task_models), else the base. */
    router_model: z.string().min(1),
    task_models: z.record(z.string().min(1), z.string().min(1)),
    /** Served model id → share of callers; empty: no split. */
    ab: z.record(z.string().min(1), z.number().positive()),
  }),
  tracking: z.strictObject({
    /** An MLflow tracking server (http or https); null: MLFLOW_TRACKING_URI where set, else no tracking. */
    mlflow_uri: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL of an MLflow tracking server" }).nullable(),
    /** The MLflow experiment runs go to; MLFLOW_EXPERIMENT_NAME overrides it. */
    experiment: z.string().min(1),
    /** The registered model `models promote` adds adapter versions to (its stage becomes the version's alias). */
    registered_model: z.string().min(1),
    /** The registered model `match train` adds TF-IDF matcher versions to. */
    matcher_registered_model: z.string().min(1),
    /** Upload the adapter's files (weights, card, metrics) as the training run's artifacts. */
    log_artifacts: z.boolean(),
    /** How long one request to the server may take before tracking gives up for the run. */
    timeout_seconds: z.number().positive(),
  }),
  demo: z.strictObject({
    /** The base model, a `models pull` catalogue name. */
    model: z.string().min(1),
    /** The tasks the demo trains and evaluates. */
    tasks: z.array(z.string().min(1)).min(1),
    /** Rows of those tasks whose prompt and answer together exceed this many characters are left out. */
    max_row_characters: positiveInt,
    /** At most this many training rows of each task (one count per task of `tasks`), and validation rows of each task; every fitting test row is evaluated. */
    train_rows_by_task: z.record(z.string().min(1), positiveInt),
    val_rows_per_task: nonNegativeInt,
    epochs: z.number().positive(),
    batch_size: positiveInt,
    learning_rate: z.number().positive(),
    warmup_steps: nonNegativeInt,
    max_seq_length: positiveInt,
    quantization: z.enum(QUANTIZATION_MODES),
    lora_r: positiveInt,
    lora_dropout: z.number().min(0).lt(1),
    lm_head_positions: LM_HEAD_POSITIONS,
    lora_top_layers: positiveInt.nullable(),
    target_modules: z.array(z.string().min(1)).min(1),
    /** The eval's generation length limit per task. */
    max_new_tokens_by_task: z.record(z.string(), positiveInt),
    /** Score the references' loss (perplexity) too; through node-llama-cpp it costs about a generation. */
    reference_loss: z.boolean(),
    /** Prompts node-llama-cpp generates at once in the demo's eval (eval.sequences for `ats-lora eval`). */
    sequences: positiveInt,
  }).refine((demo) => demo.tasks.every((task) => demo.train_rows_by_task[task] !== undefined), {
    error: "needs a count in train_rows_by_task for each of demo.tasks",
    path: ["train_rows_by_task"],
  }),
});

export type AtsConfig = z.infer<typeof ConfigSchema>;

/** A nested object of overrides, e.g. `{ lora: { r: 8 } }`. */
export type ConfigOverrides = { [key: string]: unknown };

export const ENV_PREFIX = "ATS_LORA_";

/** ATS_LORA_* variables that are not configuration keys (the worker's interpreter, and so on). */
const NON_CONFIG_ENV = new Set(["ATS_LORA_PYTHON", "ATS_LORA_HOME", "ATS_LORA_DEBUG"]);

interface Layer {
  /** Where the values came from, for error messages: a file path, "environment", "command-line flags". */
  source: string;
  values: ConfigOverrides;
  /** For a YAML file: where each key path sits, to name the line. */
  locate?: (path: readonly PropertyKey[]) => number | undefined;
}

export interface LoadConfigOptions {
  /** A YAML file of overrides (--config). */
  configFile?: string | undefined;
  /** Environment to read ATS_LORA_* variables from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Overrides from command flags: the highest layer. */
  overrides?: ConfigOverrides;
  /** The defaults file; configs/default.yaml of the installation unless given. */
  defaultsFile?: string;
}

/** Loads the effective configuration: defaults < --config FILE < ATS_LORA_* environment < flags. */
export function loadConfig(options: LoadConfigOptions = {}): AtsConfig {
  const layers: Layer[] = [readYamlLayer(options.defaultsFile ?? defaultConfigPath())];
  if (options.configFile !== undefined) layers.push(readYamlLayer(options.configFile));
  const envLayer = readEnvLayer(options.env ?? process.env);
  if (Object.keys(envLayer.values).length > 0) layers.push(envLayer);
  if (options.overrides !== undefined) {
    layers.push({ source: "command-line flags", values: pruneUndefined(options.overrides) });
  }

  let merged: ConfigOverrides = {};
  for (const layer of layers) merged = deepMerge(merged, layer.values);

  const result = ConfigSchema.safeParse(merged);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => describeIssue(issue, layers, merged));
  throw new InputError("invalid configuration", {
    details,
    hint: "fix the values above; `ats-lora config show` prints the effective configuration, configs/default.yaml documents every key",
  });
}

function readYamlLayer(file: string): Layer {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new InputError(`cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      cause: error,
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line;
    throw new InputError(`${file}${line === undefined ? "" : `:${line}`}: not valid YAML: ${first.message.split("\n")[0]}`);
  }
  const values = yamlValue(() => doc.toJS(), file);
  if (!isPlainObject(values)) {
    throw new InputError(`${file}: a config file must be a mapping of sections (model:, lora:, training:, …)`);
  }
  return {
    source: file,
    values,
    locate: (keyPath) => {
      const node = doc.getIn(keyPath as unknown[], true) as { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0];
      if (offset === undefined) {
        // An unknown key has no node at its own path; point at its parent mapping instead.
        const parent = keyPath.length > 0 ? doc.getIn(keyPath.slice(0, -1) as unknown[], true) : undefined;
        if ((isMap(parent) || isSeq(parent)) && parent.range) return lineCounter.linePos(parent.range[0]).line;
        return undefined;
      }
      return lineCounter.linePos(offset).line;
    },
  };
}

/**
 * A YAML value as plain data, or an error naming where it came from: aliases can expand a few lines into
 * millions of nodes (yaml stops at its alias limit) or refer to their own anchor (a value with no end).
 */
function yamlValue(read: () => unknown, where: string): unknown {
  let value: unknown;
  try {
    value = read() ?? {};
  } catch (error) {
    throw new InputError(`${where}: YAML aliases expand too far: ${(error as Error).message}`, {
      cause: error,
      hint: "write the values out instead of repeating anchors (&name / *name)",
    });
  }
  const open = new Set<unknown>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== "object") return;
    if (open.has(node)) {
      throw new InputError(`${where}: a YAML alias refers to its own anchor, so the value never ends`, {
        hint: "remove the alias (*name) inside the anchored value (&name)",
      });
    }
    open.add(node);
    for (const child of Object.values(node)) visit(child);
    open.delete(node);
  };
  visit(value);
  return value;
}

function readEnvLayer(env: NodeJS.ProcessEnv): Layer {
  const values: ConfigOverrides = {};
  const sections = new Set(Object.keys(ConfigSchema.shape));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || NON_CONFIG_ENV.has(name)) continue;
    const keyPath = name.slice(ENV_PREFIX.length).toLowerCase().split("__");
    // Variables outside the config's sections belong to other tools (ATS_LORA_PYTHON, …); a typo inside a
    // section is caught by the strict schema below and named with the variable.
    if (!sections.has(keyPath[0]!)) continue;
    let value: unknown;
    try {
      value = parseYaml(raw);
    } catch {
      value = raw;
    }
    if (value !== null && typeof value === "object") value = yamlValue(() => value, `environment (${name})`);
    setIn(values, keyPath, value);
  }
  return { source: "environment", values };
}

function describeIssue(issue: z.core.$ZodIssue, layers: Layer[], merged: ConfigOverrides): string {
  const basePath = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    return issue.keys
      .map((key) => {
        const keyPath = [...basePath, key];
        const allowed = allowedKeys(basePath);
        return `${where(keyPath, layers)}${keyPath.join(".")}: unknown key${allowed ? `; allowed keys: ${allowed.join(", ")}` : ""}`;
      })
      .join("\n");
  }
  const value = getIn(merged, basePath);
  const got = value === undefined ? "nothing" : JSON.stringify(value);
  return `${where(basePath, layers)}${basePath.join(".") || "(root)"}: ${issue.message} (got ${got})`;
}

/** "FILE:LINE: " or "environment (ATS_LORA_X__Y): " for the highest layer that set this key path. */
function where(keyPath: readonly string[], layers: Layer[]): string {
  for (let i = layers.length - 1; i >= 0; i -= 1) {
    const layer = layers[i]!;
    if (getIn(layer.values, keyPath) === undefined) continue;
    if (layer.source === "environment") return `environment (${ENV_PREFIX}${keyPath.join("__").toUpperCase()}): `;
    if (!layer.locate) return `${layer.source}: `;
    const line = layer.locate(keyPath);
    return `${layer.source}${line === undefined ? "" : `:${line}`}: `;
  }
  return "";
}

function allowedKeys(keyPath: readonly string[]): string[] | undefined {
  let schema: z.ZodType = ConfigSchema;
  for (const key of keyPath) {
    if (!(schema instanceof z.ZodObject)) return undefined;
    const next = (schema.shape as Record<string, z.ZodType>)[key];
    if (!next) return undefined;
    schema = next;
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : undefined;
}

function isPlainObject(value: unknown): value is ConfigOverrides {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deepMerge(base: ConfigOverrides, top: ConfigOverrides): ConfigOverrides {
  const out: ConfigOverrides = { ...base };
  for (const [key, value] of Object.entries(top)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function pruneUndefined(values: ConfigOverrides): ConfigOverrides {
  const out: ConfigOverrides = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    out[key] = isPlainObject(value) ? pruneUndefined(value) : value;
  }
  return out;
}

function getIn(values: unknown, keyPath: readonly string[]): unknown {
  let node = values;
  for (const key of keyPath) {
    if (!isPlainObject(node)) return undefined;
    node = node[key];
  }
  return node;
}

function setIn(values: ConfigOverrides, keyPath: readonly string[], value: unknown): void {
  let node = values;
  for (const key of keyPath.slice(0, -1)) {
    const next = node[key];
    if (isPlainObject(next)) node = next;
    else node = node[key] = {};
  }
  node[keyPath[keyPath.length - 1]!] = value;
}
