import { Command, InvalidArgumentError, Option } from "commander";
import { createRunContext, ExitCode, fraction, InputError, nonNegativeInt, positiveInt, positiveNumber, withCtrlC, type GlobalOptions } from "@ats-lora/core";
import { ProgressDisplay } from "./train-progress.js";
import { renderOutcome, resumeCommand } from "./train-result.js";

const moduleList = (value: string): string[] => {
  const modules = value.split(",").map((name) => name.trim()).filter(Boolean);
  if (modules.length === 0) throw new InvalidArgumentError("must be auto or a comma-separated list of module names");
  return modules;
};

/** The flags as commander parses them: the run's folders, and the configuration keys they set (sections below). */
interface TrainFlags {
  trainingData?: string; outputDir?: string; resume?: boolean; overwrite?: boolean;
  // model.*
  base?: string; quantization?: "auto" | "4bit" | "8bit" | "none";
  // lora.*
  loraR?: number; loraAlpha?: number; loraDropout?: number; targetModules?: string[];
  // training.*
  format?: "sft" | "dpo" | "kto"; epochs?: number; batchSize?: number; maxSteps?: number; lr?: number; gradAccum?: number; warmupSteps?: number;
  maxSeqLength?: number; packing?: boolean; seed?: number; regressionField?: string; regressionWeight?: number; regressionLoss?: "mse" | "mae" | "huber";
}

/** `ats-lora train`: LoRA / QLoRA fine-tuning through the Python worker. */
export function trainCommand(): Command {
  return new Command("train")
    .description("fine-tune a base model with LoRA (4-bit QLoRA where bitsandbytes supports the device) on build-db's training pairs")
    .option("--base <id-or-path>", "base model: a Hugging Face hub id or a local folder (default: model.base)")
    .option("--training-data <dir>", "training pairs folder (default: feedback_db/training_pairs)")
    .option("--output-dir <dir>", "where the adapter goes (default: models/ats_lora_vN, the next free N)")
    .addOption(new Option("--format <format>", "training data format (default: training.format)").choices(["sft", "dpo", "kto"]))
    .option("--epochs <n>", "passes over the data (training.epochs)", positiveNumber)
    .option("--batch-size <n>", "examples per device per step (training.batch_size)", positiveInt)
    .option("--max-steps <n>", "optimizer steps (training.max_steps)", positiveInt)
    .option("--lr <x>", "peak learning rate (training.learning_rate)", positiveNumber)
    .option("--grad-accum <n>", "gradient accumulation steps (training.grad_accum)", positiveInt)
    .option("--warmup-steps <n>", "warm-up steps (training.warmup_steps)", nonNegativeInt)
    .option("--max-seq-length <n>", "tokens per example (training.max_seq_length)", positiveInt)
    .addOption(new Option("--quantization <mode>", "base model weights (model.quantization)").choices(["auto", "4bit", "8bit", "none"]))
    .option("--lora-r <n>", "LoRA rank (lora.r)", positiveInt)
    .option("--lora-alpha <n>", "LoRA alpha (lora.alpha)", positiveNumber)
    .option("--lora-dropout <x>", "LoRA dropout (lora.dropout)", fraction)
    .option("--target-modules <list>", "auto, or module names a,b,c (lora.target_modules)", moduleList)
    .option("--packing", "pack short examples into full sequences (training.packing)")
    .option("--seed <n>", "seed (training.seed)", nonNegativeInt)
    .option("--resume", "continue from the newest complete checkpoint in the output folder, with optimizer and scheduler state (same settings only)")
    .option("--overwrite", "delete what an earlier run left in the output folder and start over")
    .option("--regression-field <name>", "JSON field of a number in the answers (e.g. match_score) for the hybrid loss (training.regression_field)")
    .option("--regression-weight <w>", "weight W of the regression term in loss = LM loss + W × regression loss (training.regression_weight)", positiveNumber)
    .addOption(new Option("--regression-loss <kind>", "regression loss (training.regression_loss)").choices(["mse", "mae", "huber"]))
    .addHelpText(
      "after",
      `
The snake_case spellings work too (--training_data, --output_dir, --batch_size, …). Ctrl-C saves a
checkpoint and exits 130; --resume continues it. --json streams the events as NDJSON on stdout.

Examples:
  $ ats-lora train --base mistralai/Mistral-7B-v0.1
  $ ats-lora --workdir W train --base W/models/tiny --output_dir W/models/v1 --max-steps 30 --json
  $ ats-lora train --base W/models/tiny --format dpo --quantization none --lr 1e-4`,
    )
    .action(async (flags: TrainFlags, cmd: Command) => {
      // Every setting reaches the run through the configuration: the flags are its top layer.
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>(), {
        model: { base: flags.base, quantization: flags.quantization },
        lora: { r: flags.loraR, alpha: flags.loraAlpha, dropout: flags.loraDropout, target_modules: flags.targetModules },
        training: {
          format: flags.format,
          epochs: flags.epochs,
          batch_size: flags.batchSize,
          max_steps: flags.maxSteps,
          learning_rate: flags.lr,
          grad_accum: flags.gradAccum,
          warmup_steps: flags.warmupSteps,
          max_seq_length: flags.maxSeqLength,
          packing: flags.packing,
          seed: flags.seed,
          regression_field: flags.regressionField,
          regression_weight: flags.regressionWeight,
          regression_loss: flags.regressionLoss,
        },
      });
      // Which flags were typed is the command's to know: the configuration always has a weight and a loss.
      if (context.config.training.regression_field === null && (flags.regressionWeight !== undefined || flags.regressionLoss !== undefined)) {
        throw new InputError("--regression-weight and --regression-loss need a field to regress on", {
          hint: "add --regression-field NAME (training.regression_field), e.g. --regression-field match_score",
        });
      }
      const { trainAdapter } = await import("../train.js");
      const display = new ProgressDisplay(context);
      // The folder the run took (the next free one without --output-dir), named by the resume command.
      let outputDir: string | undefined;
      try {
        const input = { trainingData: flags.trainingData, outputDir: flags.outputDir, resume: flags.resume, overwrite: flags.overwrite };
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
