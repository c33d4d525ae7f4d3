import { progressEvents, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import { evaluateRetrieval, readLabelledQueries, type RetrievalEvaluation } from "./evaluate.js";
import { KnowledgeStore } from "./retrieve.js";

export interface EvaluateKnowledgeStoreInput {
  /** JSONL of labelled queries: {"query", "relevant": [source paths], "kind"?} per line. */
  queriesFile: string;
  /** The store folder; the workdir's vector_store unless given. */
  store?: string;
}

/**
 * `rag eval`: recall@k (k = rag.top_k) and MRR@10 of every retrieval mode on labelled queries, whose relevant
 * sources must all be in the store. Progress counts the queries.
 */
export async function evaluateKnowledgeStore(
  input: EvaluateKnowledgeStoreInput,
  context: OperationContext,
  options: OperationOptions = {},
): Promise<RetrievalEvaluation> {
  const store = await KnowledgeStore.open(input.store ?? context.paths.vectorStore, context.config);
  try {
    const queries = readLabelledQueries(input.queriesFile, store.sources());
    const progress = progressEvents(options.onEvent);
    progress.start(queries.length, "queries");
    return await evaluateRetrieval(store, queries, {
      k: context.config.rag.top_k,
      queriesFile: input.queriesFile,
      onQuery: (done) => {
        progress.update(done);
        throwIfAborted(options.signal, "rag eval");
      },
    }).finally(() => progress.stop());
  } finally {
    await store.close();
  }
}
