import { Command } from "commander";
import { createRunContext, renderEvents, type GlobalOptions } from "@ats-lora/core";
import { formatBytes, shortPath, table } from "./render.js";

/** `ats-lora models list`: what models/ holds. */
export function listCommand(): Command {
  return new Command("list")
    .description("list the base models, adapters and other models under models/ (kind, format, size, base, exports)")
    .addHelpText(
      "after",
      `
Examples:
  $ ats-lora models list
  $ ats-lora --workdir W models list --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { listModels } = await import("../list.js");
      const events = renderEvents(context);
      const list = listModels(context, { onEvent: events.onEvent });
      events.done();
      context.reporter.result(list, () => {
        if (list.models.length === 0) return `no models in ${shortPath(list.models_dir)} (try: ats-lora models pull smollm2-135m-instruct)`;
        const rows = list.models.map((model) => [
          model.name,
          model.kind,
          model.format,
          formatBytes(model.size_bytes),
          model.base === null ? "-" : shortPath(model.base),
          model.exports.join(", ") || "-",
          model.stage ?? "-",
        ]);
        return table(["NAME", "KIND", "FORMAT", "SIZE", "BASE", "EXPORTS", "STAGE"], rows);
      });
    });
}
