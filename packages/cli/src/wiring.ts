import fs from "node:fs";
import { InputError, type AtsConfig, type EvalEngine, type OperationContext } from "@ats-lora/core";
import type { WorkerClient } from "@ats-lora/worker";

/**
 * The ports through which the cli connects packages on one floor: build-db and eval take the knowledge store; eval
 * takes the model runners (node-llama-cpp and the Python worker) and the feedback store's metadata; chat takes the
 * models room's resolver; none of them depends on those packages itself.
 */

/** The knowledge store as build-db and eval take it (--rag). */
export async function openRetriever(store: string, config: AtsConfig) {
  const { KnowledgeStore, passageRetriever } = await import("@ats-lora/rag");
  const knowledge = await KnowledgeStore.open(store, config);
  return { retriever: passageRetriever(knowledge, { k: config.rag.top_k, mode: config.rag.mode }), close: () => knowledge.close() };
}

/** A model argument as node-llama-cpp loads it (a GGUF base, an adapter's LoRA GGUF exported once): chat's port. */
export async function resolveModel(model: string, options: { base?: string }, context: OperationContext) {
  const { resolveLocalModel } = await import("@ats-lora/models");
  return resolveLocalModel(model, options, context);
}

interface ModelRef {
  model: string;
  base?: string | null;
}

/**
 * What eval runs models on: node-llama-cpp for models on a GGUF base (engine auto, the default where it applies, or
 * llama), the Python worker for the rest (or for everything with engine worker). Each is started when first needed.
 */
export async function openRunner(logFile: string, { engine, context }: { engine: EvalEngine; context: OperationContext }) {
  const [{ WorkerClient, workerModelRunner }, { llamaModelRunner }, { resolveLocalModel, runsOnLlamaCpp }] = await Promise.all([
    import("@ats-lora/worker"),
    import("@ats-lora/inference"),
    import("@ats-lora/models"),
  ]);
  let worker: { client: WorkerClient; runner: ReturnType<typeof workerModelRunner> } | undefined;
  const llama = llamaModelRunner((ref) => resolveLocalModel(ref.model, { base: ref.base ?? undefined }, context), { sequences: context.config.eval.sequences });
  const onLlama = (ref: ModelRef): boolean => {
    if (engine === "worker") return false;
    const gguf = runsOnLlamaCpp(ref.model, ref.base);
    if (engine === "llama" && !gguf) {
      throw new InputError(`--engine llama: ${ref.model}${ref.base ? ` on ${ref.base}` : ""} is not a GGUF model or an adapter on one`, {
        hint: "use --engine worker (or auto), or export it: ats-lora export ADAPTER --format gguf",
      });
    }
    return gguf;
  };
  let cancelRequested = false;
  /** Runs a request on the worker, started when first needed; a cancel that came while it was starting stops it at once. */
  const onWorker = async <T>(request: (runner: ReturnType<typeof workerModelRunner>) => Promise<T>): Promise<T> => {
    if (!worker) {
      const { client } = await WorkerClient.start({ logFile });
      worker = { client, runner: workerModelRunner(client) };
    }
    const answer = request(worker.runner);
    // After the request: the worker forgets a cancel that comes before its job.
    if (cancelRequested) worker.runner.cancel();
    return answer;
  };
  return {
    runner: {
      async generate(ref: ModelRef, prompts: string[], options: { maxNewTokens: number; seed: number; jsonSchema?: Record<string, unknown> }, onProgress?: (done: number) => void) {
        return onLlama(ref) ? llama.generate(ref, prompts, options, onProgress) : onWorker((runner) => runner.generate(ref, prompts, options, onProgress));
      },
      async score(ref: ModelRef, prompts: string[], references: string[], onProgress?: (done: number) => void) {
        return onLlama(ref) ? llama.score(ref, prompts, references, onProgress) : onWorker((runner) => runner.score(ref, prompts, references, onProgress));
      },
      engine: (ref: ModelRef) => (onLlama(ref) ? "node-llama-cpp" : "worker"),
      cancel() {
        cancelRequested = true;
        llama.cancel();
        worker?.runner.cancel();
      },
    },
    async close() {
      await llama.close();
      await worker?.client.close();
    },
  };
}

/** Interaction metadata from the workdir's feedback store, when there is one. */
export async function openMetadata(storeFile: string) {
  if (!fs.existsSync(storeFile)) return undefined;
  const { FeedbackStore } = await import("@ats-lora/feedback");
  const store = FeedbackStore.open(storeFile, { readonly: true });
  return {
    lookup: (id: string) => store.getInteraction(id)?.metadata,
    close: () => store.close(),
  };
}
