import { Command, Option } from "commander";
import {
  ConfigSchema,
  createRunContext,
  ExitCode,
  FORMATS,
  fraction,
  InputError,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  QUANTIZATION_MODES,
  withCtrlC,
  type GlobalOptions,
} from "@ats-lora/core";
import { addScaleOptions, configOverrides, moduleList, nodesFromFlags, type TrainFlags } from "./train-flags.js";
import { followNodeZero, printMemoryPlan } from "./train-scale.js";
import { ProgressDisplay } from "./train-progress.js";
import { renderOutcome, resumeCommand } from "./train-result.js";

/** `ats-lora train`: LoRA / QLoRA fine-tuning through the Python worker. */
export function trainCommand(): Command {
  const command = new Command("train")
    .description("fine-tune a base model with LoRA (4-bit QLoRA where bitsandbytes supports the device) on build-db's training pairs")
    .option("--base <id-or-path>", "base model: a Hugging Face hub id or a local folder (default: model.base)")
    .option("--training-data <dir>", "training pairs folder (default: feedback_db/training_pairs)")
    .option("--output-dir <dir>", "where the adapter goes (default: models/ats_lora_vN, the next free N)")
    .addOption(new Option("--format <format>", "training data format (default: training.format)").choices(FORMATS))
    .option("--epochs <n>", "passes over the data (training.epochs)", positiveNumber)
    .option("--batch-size <n>", "examples per device per step (training.batch_size)", positiveInt)
    .option("--max-steps <n>", "optimizer steps (training.max_steps)", positiveInt)
    .option("--lr <x>", "peak learning rate (training.learning_rate)", positiveNumber)
    .option("--grad-accum <n>", "gradient accumulation steps (training.grad_accum)", positiveInt)
    .option("--warmup-steps <n>", "warm-up steps (training.warmup_steps)", nonNegativeInt)
    .option("--max-seq-length <n>", "tokens per example (training.max_seq_length)", positiveInt)
    .addOption(new Option("--quantization <mode>", "base model weights (model.quantization)").choices(QUANTIZATION_MODES))
    .option("--lora-r <n>", "LoRA rank (lora.r)", positiveInt)
    .option("--lora-alpha <n>", "LoRA alpha (lora.alpha)", positiveNumber)
    .option("--lora-dropout <x>", "LoRA dropout (lora.dropout)", fraction)
    .option("--target-modules <list>", "auto, or module names a,b,c (lora.target_modules)", moduleList)
    .option("--packing", "pack short examples into full sequences (training.packing)")
    .option("--seed <n>", "seed (training.seed)", nonNegativeInt)
    .option(
      "--early-stopping-patience <n>",
      "stop when the validation loss, measured at each epoch's end, has not improved for N evaluations; the best epoch's adapter is saved (training.early_stopping_patience)",
      positiveInt,
    )
    .option("--resume", "continue from the newest complete checkpoint in the output folder, with optimizer and scheduler state (same settings only)")
    .option("--overwrite", "delete what an earlier run left in the output folder and start over")
    .option("--regression-field <name>", "JSON field of a number in the answers (e.g. match_score) for the hybrid loss (training.regression_field)")
    .option("--regression-weight <w>", "weight W of the regression term in loss = LM loss + W × regression loss (training.regression_weight)", positiveNumber)
    .addOption(new Option("--regression-loss <kind>", "regression loss (training.regression_loss)").choices(ConfigSchema.shape.training.shape.regression_loss.options));
  return addScaleOptions(command)
    .addHelpText(
      "after",
      `
The snake_case spellings work too (--training_data, --output_dir, --batch_size, …). Ctrl-C saves a
checkpoint and exits 130; --resume continues it. --json streams the events as NDJSON on stdout.

Examples:
  $ ats-lora train --base mistralai/Mistral-7B-v0.1
  $ ats-lora --workdir W train --base W/models/tiny --output_dir W/models/v1 --max-steps 30 --json
  $ ats-lora train --base W/models/tiny --format dpo --quantization none --lr 1e-4
  $ ats-lora train --base mistralai/Mistral-7B-v0.1 --dry-run
  $ ats-lora train --devices 4 --strategy fsdp --max-seq-length 2048
  $ ats-lora train --devices 8 --nodes 2 --node-rank 0 --master-addr 10.0.0.1   (and --node-rank 1 on the other)`,
    )
    .action(async (flags: TrainFlags, cmd: Command) => {
      // Every setting reaches the run through the configuration: the flags are its top layer.
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>(), configOverrides(flags));
      // Which flags were typed is the command's to know: the configuration always has a weight and a loss.
      if (context.config.training.regression_field === null && (flags.regressionWeight !== undefined || flags.regressionLoss !== undefined)) {
        throw new InputError("--regression-weight and --regression-loss need a field to regress on", {
          hint: "add --regression-field NAME (training.regression_field), e.g. --regression-field match_score",
        });
      }
      if (flags.dryRun) return printMemoryPlan(context);
      const nodes = nodesFromFlags(flags);
      if (nodes !== undefined && nodes.nodeRank > 0) return followNodeZero(context, { ...nodes, processes: context.config.training.devices });
      const { trainAdapter } = await import("../train.js");
      const display = new ProgressDisplay(context);
      // The folder the run took (the next free one without --output-dir), named by the resume command.
      let outputDir: string | undefined;
      try {
        const input = { trainingData: flags.trainingData, outputDir: flags.outputDir, resume: flags.resume, overwrite: flags.overwrite, nodes };
        const outcome = await withCtrlC((signal) =>
          trainAdapter(input, context, {
            signal,
            onEvent: (event) => {
              if (event.method === "started") outputDir = event.params.output_dir;
              display.event(event);
            },
          }),
        );
        display.done();
        // `started` comes before any outcome, so the folder is known here.
        renderOutcome(context, outcome, () => resumeCommand(process.argv.slice(2), outputDir!));
        if (outcome.status === "cancelled") process.exitCode = ExitCode.interrupted;
      } finally {
        display.done();
      }
    });
}
