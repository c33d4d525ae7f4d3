import { Command } from "commander";
import { createRunContext, nonNegativeInt, renderEvents, repeatable, type GlobalOptions } from "@ats-lora/core";
import { listCommand, promoteCommand, pullCommand, rollbackCommand, showCommand } from "@ats-lora/models/command";

/** `ats-lora models`: base models (the catalogue, the hub, GGUF files), the adapters beside them, the tiny test model. */
export function modelsCommand(): Command {
  const command = new Command("models").description("pull, list and make models; adapter versions: show, promote, rollback");
  command.addCommand(pullCommand());
  command.addCommand(listCommand());
  command.addCommand(showCommand());
  command.addCommand(promoteCommand());
  command.addCommand(rollbackCommand());
  command
    .command("create-tiny")
    .description("create a tiny Mistral-architecture model with a BPE tokenizer trained on data/ (no download)")
    .argument("<dir>", "folder to write the model to")
    .option("--pretrain-steps <n>", "next-token training on the corpus before saving (0 = random weights)", nonNegativeInt, 0)
    .option("--source <path>", "text to train the tokenizer on (repeatable; default: the bundled data/)", repeatable)
    .option("--seed <n>", "seed", nonNegativeInt, 42)
    .addHelpText(
      "after",
      `
Examples:
  $ ats-lora models create-tiny models/tiny
  $ ats-lora --workdir W models create-tiny W/models/tiny --pretrain-steps 200`,
    )
    .action(async (dir: string, options: { pretrainSteps: number; source?: string[]; seed: number }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { createTinyModel } = await import("@ats-lora/trainer");
      const events = renderEvents(context);
      const input = { dir, sources: options.source, pretrainSteps: options.pretrainSteps, seed: options.seed };
      const info = await createTinyModel(input, context, { onEvent: events.onEvent }).finally(events.done);
      context.reporter.result(info, () =>
        `created ${info.path}: ${info.architecture}, ${(info.parameters / 1e6).toFixed(1)}M parameters, vocabulary ${info.vocab_size}${info.pretrain_steps ? `, pretrained ${info.pretrain_steps} steps (loss ${info.pretrain_loss_first} → ${info.pretrain_loss_last})` : ""}`,
      );
    });
  return command;
}
