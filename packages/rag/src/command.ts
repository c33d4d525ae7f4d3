import { Command } from "commander";
import { ragBuildCommand } from "./commands/build.js";
import { ragEvalCommand } from "./commands/eval.js";
import { ragQueryCommand } from "./commands/query.js";

/** `ats-lora rag`: the knowledge store. */
export function ragCommand(): Command {
  return new Command("rag")
    .description("the knowledge store: chunk, embed and index documents (FAISS + SQLite FTS5); retrieve passages")
    .addCommand(ragBuildCommand())
    .addCommand(ragQueryCommand())
    .addCommand(ragEvalCommand());
}
