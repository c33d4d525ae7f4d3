import fs from "node:fs";
import type { AtsConfig } from "@ats-lora/core";

/**
 * The ports through which the cli connects packages on one floor: build-db and eval take the knowledge store, eval
 * takes the Python worker and the feedback store's metadata, without depending on those packages themselves.
 */

/** The knowledge store as build-db and eval take it (--rag). */
export async function openRetriever(store: string, config: AtsConfig) {
  const { KnowledgeStore, passageRetriever } = await import("@ats-lora/rag");
  const knowledge = await KnowledgeStore.open(store, config);
  return { retriever: passageRetriever(knowledge, { k: config.rag.top_k, mode: config.rag.mode }), close: () => knowledge.close() };
}

/** The Python worker as eval runs models on it. */
export async function openRunner(logFile: string) {
  const { WorkerClient, workerModelRunner } = await import("@ats-lora/worker");
  const { client } = await WorkerClient.start({ logFile });
  return { runner: workerModelRunner(client), close: () => client.close() };
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
