import path from "node:path";
import type { AtsConfig } from "@ats-lora/core";
import type { Format } from "@ats-lora/dataset-builder";
import type { Notification, ResultOf, TrainParams } from "./protocol.js";
import { resolveModelArgument } from "./inference.js";
import { fileSha256, lockOutputFolder, prepareOutputFolder, type RunSettings } from "./output-folder.js";
import { checkTrainingData, type TrainingDataSummary } from "./training-data.js";
import { WorkerClient } from "./worker-client.js";
import type { z } from "zod";

export interface TrainOptions {
  config: AtsConfig;
  base: string;
  dataDir: string;
  outputDir: string;
  format: Format;
  resume?: boolean;
  /** Delete what a previous run left in the output folder and start over. */
  overwrite?: boolean;
  /** The hybrid loss; undefined: from the configuration (training.regression_*). */
  regression?: Regression | null;
  /** Events as they happen: the worker's notifications, and what this side decides. */
  onEvent?: (event: TrainEvent) => void;
  /** Aborting asks the worker to save a checkpoint and stop. */
  signal?: AbortSignal;
  python?: string;
}

export interface Regression {
  field: string;
  weight: number;
  loss: "mse" | "mae" | "huber";
}

/** The hybrid loss the configuration asks for: training.regression_field set, or null. */
export function regressionFromConfig(training: AtsConfig["training"]): Regression | null {
  const field = training.regression_field;
  return field ? { field, weight: training.regression_weight, loss: training.regression_loss } : null;
}

export type TrainEvent =
  | Notification
  | {
      method: "started";
      params: { worker: ResultOf<"initialize">; worker_pid: number | undefined; data: TrainingDataSummary; output_dir: string; log_file: string };
    }
  | { method: "cancelling"; params: Record<string, never> };

export type TrainOutcome = ResultOf<"train"> & { log_file: string };

/** The worker's train parameters from the configuration (flags already merged into it). */
export function trainParams(options: TrainOptions): z.input<typeof TrainParams> {
  const { config } = options;
  const targets = config.lora.target_modules;
  return {
    base: resolveModelArgument(options.base),
    data_dir: path.resolve(options.dataDir),
    output_dir: path.resolve(options.outputDir),
    format: options.format,
    epochs: config.training.epochs,
    batch_size: config.training.batch_size,
    max_steps: config.training.max_steps,
    learning_rate: config.training.learning_rate,
    grad_accum: config.training.grad_accum,
    warmup_steps: config.training.warmup_steps,
    max_seq_length: config.training.max_seq_length,
    quantization: config.model.quantization,
    bnb_4bit_quant_type: config.model.bnb_4bit_quant_type,
    bnb_4bit_double_quant: config.model.bnb_4bit_double_quant,
    compute_dtype: config.model.compute_dtype,
    lora_r: config.lora.r,
    lora_alpha: config.lora.alpha,
    lora_dropout: config.lora.dropout,
    target_modules: targets.length === 1 && targets[0] === "auto" ? "auto" : targets,
    lora_bias: config.lora.bias,
    packing: config.training.packing,
    gradient_checkpointing: config.training.gradient_checkpointing,
    lr_scheduler: config.training.lr_scheduler,
    save_steps: config.training.save_steps,
    logging_steps: config.training.logging_steps,
    seed: config.training.seed,
    resume: options.resume ?? false,
    regression: options.regression !== undefined ? options.regression : regressionFromConfig(config.training),
  };
}

/** The settings a run's checkpoints depend on (recorded in OUTPUT/run_settings.json, compared on --resume). */
export function runSettings(options: TrainOptions): RunSettings {
  const params = trainParams(options);
  const folder = path.join(options.dataDir, options.format);
  return {
    base: params.base,
    format: params.format,
    lora_r: params.lora_r,
    lora_alpha: params.lora_alpha,
    lora_dropout: params.lora_dropout,
    target_modules: params.target_modules,
    lora_bias: params.lora_bias,
    quantization: params.quantization,
    bnb_4bit_quant_type: params.bnb_4bit_quant_type,
    bnb_4bit_double_quant: params.bnb_4bit_double_quant,
    max_seq_length: params.max_seq_length,
    learning_rate: params.learning_rate,
    batch_size: params.batch_size,
    grad_accum: params.grad_accum,
    lr_scheduler: params.lr_scheduler,
    packing: params.packing,
    regression: params.regression ?? null,
    data: { train: fileSha256(path.join(folder, "train.jsonl")) ?? "", val: fileSha256(path.join(folder, "val.jsonl")) },
  };
}

/**
 * Fine-tunes through the worker: checks the data, takes the output folder (a lock for the run; a folder holding
 * another run is refused unless --resume with the same settings or --overwrite), starts the worker (its log goes
 * to OUTPUT/train.log), streams its events, and turns an abort into a saved checkpoint.
 */
export async function runTraining(options: TrainOptions): Promise<TrainOutcome> {
  const data = checkTrainingData(options.dataDir, options.format);
  const emit = options.onEvent ?? (() => undefined);
  const outputDir = path.resolve(options.outputDir);
  const settings = runSettings(options);
  const release = lockOutputFolder(outputDir);
  try {
    prepareOutputFolder(outputDir, settings, {
      resume: options.resume ?? false,
      overwrite: options.overwrite ?? false,
      onWarning: (message) => emit({ method: "log", params: { message } }),
    });
    return await trainInFolder(options, data, emit);
  } finally {
    release();
  }
}

async function trainInFolder(options: TrainOptions, data: TrainingDataSummary, emit: (event: TrainEvent) => void): Promise<TrainOutcome> {
  const logFile = path.join(options.outputDir, "train.log");
  const { client, info } = await WorkerClient.start({ logFile, python: options.python });
  const unsubscribe = client.onNotification((notification) => emit(notification));
  const onAbort = (): void => {
    emit({ method: "cancelling", params: {} });
    void client.request("cancel", {}).catch(() => undefined);
  };
  try {
    emit({
      method: "started",
      params: { worker: info, worker_pid: client.pid, data, output_dir: path.resolve(options.outputDir), log_file: logFile },
    });
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    const result = await client.request("train", trainParams(options));
    return { ...result, log_file: logFile };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    unsubscribe();
    await client.close();
  }
}
