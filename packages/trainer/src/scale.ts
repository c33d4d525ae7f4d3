import path from "node:path";
import { RunError, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { followWorker, WorkerClient, type Launch, type ResultOf } from "@ats-lora/worker";
import { trainParams } from "./train.js";

/** What `train --dry-run` prints: the memory plan of the run the configuration describes. */
export type MemoryPlan = ResultOf<"plan_memory">;

/**
 * The memory plan of a run: the worker reads the base model's config only (no weights) and estimates the peak
 * memory per device (weights at the chosen quantization, LoRA, gradients, optimizer state, activations) against
 * the free memory, with the settings that would make a run fit that does not.
 */
export async function planTraining(context: OperationContext, options: { python?: string } = {}): Promise<MemoryPlan> {
  const { config } = context;
  const params = trainParams({ config, dataDir: context.paths.trainingPairs, outputDir: context.paths.models, resume: false });
  const { client } = await WorkerClient.start({ python: options.python });
  try {
    return await client.request("plan_memory", {
      base: params.base,
      quantization: params.quantization,
      bnb_4bit_quant_type: params.bnb_4bit_quant_type,
      bnb_4bit_double_quant: params.bnb_4bit_double_quant,
      compute_dtype: params.compute_dtype,
      lora_r: params.lora_r,
      lora_dropout: params.lora_dropout,
      target_modules: params.target_modules,
      lora_top_layers: params.lora_top_layers,
      max_seq_length: params.max_seq_length,
      batch_size: params.batch_size,
      gradient_checkpointing: params.gradient_checkpointing,
      attn_implementation: params.attn_implementation,
      devices: config.training.devices,
      strategy: config.training.strategy,
    });
  } finally {
    await client.close();
  }
}

/** A line of a follower node's log. */
export type FollowEvent = { method: "log"; params: { message: string } };

/**
 * A machine other than node 0 in a multi-node run: its torchrun processes join node 0's and train the run
 * node 0 sends them (the training data and output folder at the same paths on every machine: a shared
 * filesystem). Resolves when they end; their log goes to LOG_DIR/train-node-R.log.
 */
export async function followTraining(
  launch: Launch,
  context: OperationContext,
  options: OperationOptions<FollowEvent> & { python?: string } = {},
): Promise<{ node_rank: number; processes: number; log_file: string }> {
  const logFile = path.join(context.paths.workdir, "logs", `train-node-${launch.nodeRank}.log`);
  const exit = await followWorker({ launch, logFile, python: options.python, onLog: (message) => options.onEvent?.({ method: "log", params: { message } }) });
  if (exit.code !== 0) {
    throw new RunError(`this node's training processes ${exit.signal ? `were killed by ${exit.signal}` : `exited with code ${exit.code}`}`, {
      hint: `see ${logFile}, and node 0's train.log in the run's output folder`,
    });
  }
  return { node_rank: launch.nodeRank, processes: launch.processes, log_file: logFile };
}
