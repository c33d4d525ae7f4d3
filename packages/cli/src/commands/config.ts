import { Command } from "commander";
import { createRunContext, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora config show`: the effective configuration after every layer. */
export function configCommand(): Command {
  const command = new Command("config").description("inspect the configuration");
  command
    .command("show")
    .description("print the effective configuration (defaults < --config FILE < ATS_LORA_* environment < flags)")
    .addHelpText(
      "after",
      `
Examples:
  $ ats-lora config show
  $ ats-lora --config my.yaml config show --json     # with ATS_LORA_LORA__R=8 in the environment, lora.r is 8`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { stringify } = await import("yaml");
      context.reporter.result(context.config, () => stringify(context.config));
    });
  return command;
}
