import fs from "node:fs";
import path from "node:path";
import { AtsError, ExitCode, InputError } from "@ats-lora/core";
import type { WorkerClient } from "./worker-client.js";

/** A model argument as the worker must see it: a local folder made absolute (the worker runs in its own folder), a hub id as it is. */
export function resolveModelArgument(model: string): string {
  return fs.existsSync(model) ? path.resolve(model) : model;
}

export interface ModelArgument {
  model: string;
  base?: string | null;
}

function resolved(ref: ModelArgument): { model: string; base: string | null } {
  return { model: resolveModelArgument(ref.model), base: ref.base ? resolveModelArgument(ref.base) : null };
}

/**
 * Generation and reference scoring through a running worker, in the shape evaluation takes (the evaluator
 * package's ModelRunner), with the worker's per-example progress handed on.
 */
export function workerModelRunner(client: WorkerClient) {
  const withProgress = async <T>(stage: "generate" | "score", onProgress: ((done: number) => void) | undefined, run: () => Promise<T>): Promise<T> => {
    const unsubscribe = client.onNotification((notification) => {
      if (notification.method === "progress" && notification.params.stage === stage) onProgress?.(notification.params.step);
    });
    try {
      return await run();
    } finally {
      unsubscribe();
    }
  };
  return {
    async generate(ref: ModelArgument, prompts: string[], options: { maxNewTokens: number; seed: number; jsonSchema?: Record<string, unknown> }, onProgress?: (done: number) => void) {
      // Grammars are node-llama-cpp's; the worker's transformers generate has none.
      if (options.jsonSchema !== undefined) {
        throw new InputError("--json-schema needs node-llama-cpp: a GGUF model or an adapter on one", {
          hint: "export the adapter to GGUF (ats-lora export ADAPTER --format gguf) and evaluate with --engine auto or llama",
        });
      }
      const result = await withProgress("generate", onProgress, () =>
        client.request("generate", { ...resolved(ref), prompts, max_new_tokens: options.maxNewTokens, temperature: 0, seed: options.seed }),
      );
      if (result.cancelled) throw cancelled("generation");
      return result.outputs.map((output) => ({ text: output.text, tokens: output.tokens, seconds: output.seconds }));
    },
    async score(ref: ModelArgument, prompts: string[], references: string[], onProgress?: (done: number) => void) {
      const result = await withProgress("score", onProgress, () => client.request("score", { ...resolved(ref), prompts, references }));
      if (result.cancelled) throw cancelled("scoring");
      return result.losses.map((loss, i) => ({ loss, tokens: result.tokens[i] ?? 0 }));
    },
    /** Asks the worker to stop the running generate or score; that request then fails as cancelled (exit 130). */
    cancel(): void {
      void client.request("cancel", {}).catch(() => undefined);
    },
  };
}

function cancelled(what: string): AtsError {
  return new AtsError(`${what} cancelled`, { exitCode: ExitCode.interrupted, hint: "nothing was written; run the command again to evaluate" });
}
