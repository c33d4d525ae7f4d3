import path from "node:path";
import { bundledDataDir, type ProgressSink } from "@ats-lora/core";
import type { ResultOf } from "./protocol.js";
import { WorkerClient } from "./worker-client.js";

export interface CreateTinyOptions {
  dir: string;
  /** Text the tokenizer (and pretraining) learn from; default the bundled data/. */
  sources?: string[];
  pretrainSteps: number;
  seed: number;
  progress?: ProgressSink;
}

/** A tiny Mistral-architecture model with its own BPE tokenizer, made by the worker without any download. */
export async function createTinyModel(options: CreateTinyOptions): Promise<ResultOf<"create_tiny">> {
  const { client } = await WorkerClient.start();
  const progress = options.progress;
  const unsubscribe = client.onNotification((notification) => {
    if (notification.method === "progress" && notification.params.stage === "pretrain") {
      if (notification.params.step === 1) progress?.start(notification.params.total, "pretrain");
      progress?.update(notification.params.step);
    }
  });
  try {
    return await client.request("create_tiny", {
      output_dir: path.resolve(options.dir),
      sources: (options.sources ?? [bundledDataDir()]).map((source) => path.resolve(source)),
      pretrain_steps: options.pretrainSteps,
      seed: options.seed,
    });
  } finally {
    unsubscribe();
    progress?.stop();
    await client.close();
  }
}
