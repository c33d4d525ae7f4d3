import path from "node:path";
import { Command, Option } from "commander";
import { createRunContext, positiveInt, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora rag`: the knowledge store. */
export function ragCommand(): Command {
  const command = new Command("rag").description("the knowledge store: chunk, embed and index documents (FAISS + SQLite FTS5); retrieve passages");

  command
    .command("build")
    .description("build or update the store from a folder of documents (only new or changed files are embedded again)")
    .requiredOption("--docs <dir>", "folder of Markdown, text, JSON, JSONL, PDF or DOCX documents (read recursively)")
    .option("--output <dir>", "the store folder (default: vector_store under the workdir)")
    .option("--rebuild", "start over instead of reusing unchanged files")
    .option("--index <kind>", "FAISS index: auto | flat | hnsw | a faiss factory string such as HNSW32,Flat (rag.index)")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora rag build --docs data/ats_docs --output vector_store`,
    )
    .action(async (options: { docs: string; output?: string; rebuild?: boolean; index?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>(), { rag: { index: options.index } });
      const { buildStore } = await import("./store.js");
      const report = await buildStore({
        docsDir: options.docs,
        outputDir: options.output ?? context.paths.vectorStore,
        config: context.config,
        rebuild: options.rebuild,
        embeddingCacheFile: path.join(context.paths.cache, "embeddings.sqlite"),
        progress: context.progress(),
        onWarning: (message) => context.reporter.warn(message),
      });
      if (report.skipped.length > 0) {
        context.reporter.warn(
          `${report.skipped.length} file(s) skipped:`,
          report.skipped.map((skip) => `${skip.path}: ${skip.reason}`),
        );
      }
      const { files, manifest } = report;
      context.reporter.result(report, () =>
        [
          `store ${path.resolve(options.output ?? context.paths.vectorStore)}: ${manifest.counts.chunks} chunks from ${manifest.counts.sources} files (${manifest.index.factory} inner-product index, ${manifest.embedding.model} ${manifest.embedding.dtype})`,
          `files: ${files.added.length} added, ${files.changed.length} changed, ${files.unchanged.length} unchanged, ${files.removed.length} removed; ${report.embedded_chunks} chunks embedded`,
        ].join("\n"),
      );
    });

  command
    .command("query")
    .description("the passages that best answer a query, with score, source and heading")
    .argument("<text>", "the query")
    .option("-k, --top-k <k>", "how many passages (rag.top_k)", positiveInt)
    .addOption(new Option("--mode <mode>", "dense | lexical (BM25) | hybrid (reciprocal rank fusion of both) (rag.mode)").choices(["dense", "lexical", "hybrid"]))
    .option("--store <dir>", "the store folder (default: vector_store under the workdir)")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora rag query "What must a resume parser output for dates?" -k 3 --json`,
    )
    .action(async (text: string, options: { topK?: number; mode?: "dense" | "lexical" | "hybrid"; store?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>(), { rag: { top_k: options.topK, mode: options.mode } });
      const { KnowledgeStore } = await import("./retrieve.js");
      const store = await KnowledgeStore.open(options.store ?? context.paths.vectorStore, context.config);
      try {
        const hits = await store.retrieve(text, { k: context.config.rag.top_k, mode: context.config.rag.mode });
        context.reporter.result({ query: text, mode: context.config.rag.mode, results: hits }, () =>
          hits
            .map(
              (hit) =>
                `${hit.rank}. ${hit.score.toFixed(4)}  ${hit.source}${hit.heading ? ` › ${hit.heading}` : ""}  [${hit.start}-${hit.end}]\n   ${hit.text.replace(/\s+/g, " ").slice(0, 240)}${hit.text.length > 240 ? "…" : ""}`,
            )
            .join("\n"),
        );
      } finally {
        await store.close();
      }
    });
  command
    .command("eval")
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
      const { KnowledgeStore } = await import("./retrieve.js");
      const { evaluateRetrieval, readLabelledQueries } = await import("./evaluate.js");
      const store = await KnowledgeStore.open(options.store ?? context.paths.vectorStore, context.config);
      try {
        const queries = readLabelledQueries(options.queries, store.sources());
        const progress = context.progress();
        progress.start(queries.length, "queries");
        const evaluation = await evaluateRetrieval(store, queries, {
          k: context.config.rag.top_k,
          queriesFile: options.queries,
          onQuery: (done) => progress.update(done),
        }).finally(() => progress.stop());
        context.reporter.result(evaluation, () => renderEvaluation(evaluation));
      } finally {
        await store.close();
      }
    });
  return command;
}

function renderEvaluation(evaluation: import("./evaluate.js").RetrievalEvaluation): string {
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
