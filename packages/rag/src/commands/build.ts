import path from "node:path";
import { Command } from "commander";
import { createRunContext, renderEvents, withCtrlC, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora rag build`: documents → the knowledge store. */
export function ragBuildCommand(): Command {
  return new Command("build")
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
      const { buildKnowledgeStore } = await import("../build-knowledge-store.js");
      const events = renderEvents(context);
      const report = await withCtrlC(
        (signal) =>
          buildKnowledgeStore({ docsDir: options.docs, outputDir: options.output, rebuild: options.rebuild }, context, { signal, onEvent: events.onEvent }),
        () => context.reporter.info("stopping: the store is left as it was (Ctrl-C again to quit at once)"),
      ).finally(() => events.done());
      const { files, manifest } = report;
      context.reporter.result(report, () =>
        [
          `store ${path.resolve(options.output ?? context.paths.vectorStore)}: ${manifest.counts.chunks} chunks from ${manifest.counts.sources} files (${manifest.index.factory} inner-product index, ${manifest.embedding.model} ${manifest.embedding.dtype})`,
          `files: ${files.added.length} added, ${files.changed.length} changed, ${files.unchanged.length} unchanged, ${files.removed.length} removed; ${report.embedded_chunks} chunks embedded`,
        ].join("\n"),
      );
    });
}
