import { Command } from "commander";
import { createRunContext, positiveInt, renderEvents, type GlobalOptions } from "@ats-lora/core";
import type { RetrievalEvaluation } from "../evaluate.js";

/** `ats-lora rag eval`: recall@k and MRR@10 of each retrieval mode on labelled queries. */
export function ragEvalCommand(): Command {
  return new Command("eval")
    .description("recall@k and MRR@10 of each retrieval mode on labelled queries")
    .requiredOption("--queries <file>", 'JSONL, one {"query", "relevant": [source paths], "kind"?} per line (e.g. data/rag-queries.jsonl)')
    .option("-k, --top-k <k>", "passages per query for recall@k (rag.top_k)", positiveInt)
    .option("--store <dir>", "the store folder (default: vector_store under the workdir)")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora rag build --docs data/ats_docs
  $ ats-lora rag eval --queries data/rag-queries.jsonl --json`,
    )
    .action(async (options: { queries: string; topK?: number; store?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>(), { rag: { top_k: options.topK } });
      const { evaluateKnowledgeStore } = await import("../evaluate-knowledge-store.js");
      const events = renderEvents(context);
      const evaluation = await evaluateKnowledgeStore({ queriesFile: options.queries, store: options.store }, context, { onEvent: events.onEvent }).finally(() =>
        events.done(),
      );
      context.reporter.result(evaluation, () => renderEvaluation(evaluation));
    });
}

function renderEvaluation(evaluation: RetrievalEvaluation): string {
  const kinds = [...new Set(Object.values(evaluation.modes).flatMap((mode) => Object.keys(mode.by_kind)))];
  const header = ["mode", `recall@${evaluation.k}`, "MRR@10", ...kinds.flatMap((kind) => [`${kind} recall@${evaluation.k}`, `${kind} MRR@10`])];
  const rows = Object.entries(evaluation.modes).map(([mode, scores]) => [
    mode,
    scores.recall_at_k.toFixed(3),
    scores.mrr_at_10.toFixed(3),
    ...kinds.flatMap((kind) => [scores.by_kind[kind]?.recall_at_k.toFixed(3) ?? "-", scores.by_kind[kind]?.mrr_at_10.toFixed(3) ?? "-"]),
  ]);
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  const queries = Object.values(evaluation.modes)[0]?.queries ?? 0;
  return [`${queries} labelled queries against ${evaluation.store}`, line(header), ...rows.map(line)].join("\n");
}
