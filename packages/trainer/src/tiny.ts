import path from "node:path";
import { bundledDataDir, throwIfAborted, type OperationContext, type OperationOptions, type ProgressEvent } from "@ats-lora/core";
import type { ResultOf } from "@ats-lora/worker";
import { WorkerClient } from "@ats-lora/worker";

export interface CreateTinyModelInput {
  /** The folder to write the model to. */
  dir: string;
  /** Text the tokenizer (and pretraining) learn from; default the bundled data/. */
  sources?: string[];
  /** Next-token training on the corpus before saving (0: random weights). */
  pretrainSteps: number;
  seed: number;
}

/**
 * A tiny Mistral-architecture model with its own BPE tokenizer, made by the worker without any download;
 * pretraining reports `pretrain` progress. Aborting ends the pretraining early: the model is saved as it is
 * then, and the result's pretrain_steps says how far it got.
 */
export async function createTinyModel(
  input: CreateTinyModelInput,
  _context: OperationContext,
  options: OperationOptions<ProgressEvent> = {},
): Promise<ResultOf<"create_tiny">> {
  throwIfAborted(options.signal, "creating the tiny model");
  const { client } = await WorkerClient.start();
  const onAbort = (): void => void client.request("cancel", {}).catch(() => undefined);
  const unsubscribe = client.onNotification((notification) => {
    if (notification.method === "progress" && notification.params.stage === "pretrain") {
      const { step, total } = notification.params;
      options.onEvent?.({ type: "progress", stage: "pretrain", done: step, total, unit: "count" });
    }
  });
  try {
    const created = client.request("create_tiny", {
      output_dir: path.resolve(input.dir),
      sources: (input.sources ?? [bundledDataDir()]).map((source) => path.resolve(source)),
      pretrain_steps: input.pretrainSteps,
      seed: input.seed,
    });
    // After the request: the worker forgets a cancel that comes before its job.
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    return await created;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    unsubscribe();
    await client.close();
  }
}
