import { Command, Option } from "commander";
import { createRunContext, positiveInt, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora rag query`: the passages that best answer a query. */
export function ragQueryCommand(): Command {
  return new Command("query")
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
      const { queryKnowledgeStore } = await import("../query-knowledge-store.js");
      const answer = await queryKnowledgeStore({ query: text, store: options.store }, context);
      context.reporter.result(answer, () =>
        answer.results
          .map(
            (hit) =>
              `${hit.rank}. ${hit.score.toFixed(4)}  ${hit.source}${hit.heading ? ` › ${hit.heading}` : ""}  [${hit.start}-${hit.end}]\n   ${hit.text.replace(/\s+/g, " ").slice(0, 240)}${hit.text.length > 240 ? "…" : ""}`,
          )
          .join("\n"),
      );
    });
}
