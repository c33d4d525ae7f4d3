import { promptMessages } from "@ats-lora/core";
import type { GpuSetting } from "./llama.js";
import { LocalModel, type Generation, type LocalModelSpec, type ReferenceScore } from "./local-model.js";

/** A model as evaluation names it: a model (a base, or an adapter on `base`). */
export interface RunnerModelRef {
  model: string;
  base?: string | null;
}

/**
 * The evaluator's ModelRunner, run by node-llama-cpp (declared here by shape: the evaluator sits on the same floor).
 * Prompts are built prompts (core's buildPrompt), sent as one user turn through the model's chat template.
 */
export interface LlamaModelRunner {
  /** jsonSchema: decoding constrained to it (LocalModel's GenerateOptions.jsonSchema). */
  generate(
    ref: RunnerModelRef,
    prompts: string[],
    options: { maxNewTokens: number; seed: number; jsonSchema?: Record<string, unknown> },
    onProgress?: (done: number) => void,
  ): Promise<Generation[]>;
  score(ref: RunnerModelRef, prompts: string[], references: string[], onProgress?: (done: number) => void): Promise<ReferenceScore[]>;
  /** Stops the running generate or score, which then rejects with an `interrupted` error (exit 130). */
  cancel(): void;
  /** Disposes the loaded model. */
  close(): Promise<void>;
}

export interface LlamaModelRunnerOptions {
  /** Prompts answered at once (context sequences, each with its own KV cache of contextSize tokens); default 1. */
  sequences?: number;
  contextSize?: number;
  gpu?: GpuSetting;
  threads?: number;
}

/** Evaluation's generate and score on local GGUF models; the last model stays loaded while the same one is asked for. */
export function llamaModelRunner(resolve: (ref: RunnerModelRef) => Promise<LocalModelSpec>, options: LlamaModelRunnerOptions = {}): LlamaModelRunner {
  let loaded: { key: string; model: LocalModel } | undefined;
  let running: AbortController | undefined;
  // One call at a time: a call for another model must not dispose the one a running call uses.
  let queue: Promise<unknown> = Promise.resolve();

  const modelFor = async (ref: RunnerModelRef, signal: AbortSignal): Promise<LocalModel> => {
    const key = JSON.stringify([ref.model, ref.base ?? null]);
    if (loaded?.key === key) return loaded.model;
    const spec = await resolve(ref);
    await loaded?.model.dispose();
    loaded = undefined;
    loaded = { key, model: await LocalModel.load(spec, { sequences: options.sequences, contextSize: options.contextSize, gpu: options.gpu, threads: options.threads, signal }) };
    return loaded.model;
  };

  const exclusive = <T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const run = queue.then(async () => {
      running = new AbortController();
      try {
        return await work(running.signal);
      } finally {
        running = undefined;
      }
    });
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    generate: (ref, prompts, generateOptions, onProgress) =>
      exclusive(async (signal) =>
        (await modelFor(ref, signal)).generate(prompts.map(promptMessages), {
          maxTokens: generateOptions.maxNewTokens,
          temperature: 0,
          seed: generateOptions.seed,
          jsonSchema: generateOptions.jsonSchema,
          signal,
          onProgress,
        }),
      ),
    score: (ref, prompts, references, onProgress) =>
      exclusive(async (signal) => (await modelFor(ref, signal)).score(prompts.map(promptMessages), references, { signal, onProgress })),
    cancel: () => running?.abort(),
    close: () =>
      exclusive(async () => {
        await loaded?.model.dispose();
        loaded = undefined;
      }),
  };
}
