import fs from "node:fs";
import path from "node:path";
import type { AtsConfig } from "@ats-lora/core";
import type { Format } from "@ats-lora/dataset-builder";
import type { Notification, ResultOf, TrainParams } from "./protocol.js";
import { resolveModelArgument } from "./inference.js";
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
  regression?: { field: string; weight: number; loss: "mse" | "mae" | "huber" } | null;
  /** Events as they happen: the worker's notifications, and what this side decides. */
  onEvent?: (event: TrainEvent) => void;
  /** Aborting asks the worker to save a checkpoint and stop. */
  signal?: AbortSignal;
  python?: string;
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
    regression: options.regression ?? null,
  };
}

/**
 * Fine-tunes through the worker: checks the data, starts the worker (its log goes to OUTPUT/train.log),
 * streams its events, and turns an abort into a saved checkpoint.
 */
export async function runTraining(options: TrainOptions): Promise<TrainOutcome> {
  const data = checkTrainingData(options.dataDir, options.format);
  fs.mkdirSync(options.outputDir, { recursive: true });
  const logFile = path.join(options.outputDir, "train.log");
  const { client, info } = await WorkerClient.start({ logFile, python: options.python });
  const emit = options.onEvent ?? (() => undefined);
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
