import { throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { KnowledgeStore, type RetrievalMode, type RetrievedChunk } from "./retrieve.js";

export interface QueryKnowledgeStoreInput {
  query: string;
  /** The store folder; the workdir's vector_store unless given. */
  store?: string;
}

export interface KnowledgeStoreAnswer {
  query: string;
  mode: RetrievalMode;
  /** The best passages first. */
  results: RetrievedChunk[];
}

/** `rag query`: the rag.top_k passages that best answer a query, retrieved as rag.mode says. */
export async function queryKnowledgeStore(
  input: QueryKnowledgeStoreInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<KnowledgeStoreAnswer> {
  const { top_k: k, mode } = context.config.rag;
  const store = await KnowledgeStore.open(input.store ?? context.paths.vectorStore, context.config);
  try {
    throwIfAborted(options.signal, "rag query");
    return { query: input.query, mode, results: await store.retrieve(input.query, { k, mode }) };
  } finally {
    await store.close();
  }
}
