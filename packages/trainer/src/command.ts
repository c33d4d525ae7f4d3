import fs from "node:fs";
import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  createRunContext,
  ExitCode,
  InputError,
  fraction,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  repeatable,
  type GlobalOptions,
  type RunContext,
} from "@ats-lora/core";
import { reserveModelFolder } from "./output-folder.js";
import type { ResultOf } from "./protocol.js";
import type { TrainEvent } from "./train.js";

const moduleList = (value: string): string[] => {
  const modules = value.split(",").map((name) => name.trim()).filter(Boolean);
  if (modules.length === 0) throw new InvalidArgumentError("must be auto or a comma-separated list of module names");
  return modules;
};

interface TrainFlags {
  base?: string;
  trainingData?: string;
  outputDir?: string;
  format?: "sft" | "dpo" | "kto";
  epochs?: number;
  batchSize?: number;
  maxSteps?: number;
  lr?: number;
  gradAccum?: number;
  warmupSteps?: number;
  maxSeqLength?: number;
  quantization?: "auto" | "4bit" | "8bit" | "none";
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  targetModules?: string[];
  packing?: boolean;
  seed?: number;
  resume?: boolean;
  overwrite?: boolean;
  regressionField?: string;
  regressionWeight?: number;
  regressionLoss?: "mse" | "mae" | "huber";
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
The seed's snake_case spellings work too (--training_data, --output_dir, --batch_size, …). Ctrl-C saves a
checkpoint and exits 130; --resume continues it. --json streams the events as NDJSON on stdout.

Examples:
  $ ats-lora train --base mistralai/Mistral-7B-v0.1
  $ ats-lora --workdir W train --base W/models/tiny --output_dir W/models/v1 --max-steps 30 --json
  $ ats-lora train --base W/models/tiny --format dpo --quantization none --lr 1e-4`,
    )
    .action(async (flags: TrainFlags, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const context = createRunContext(globals, {
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
      const training = context.config.training;
      if (training.regression_field === null && (flags.regressionWeight !== undefined || flags.regressionLoss !== undefined)) {
        throw new InputError("--regression-weight and --regression-loss need a field to regress on", {
          hint: "add --regression-field NAME (training.regression_field), e.g. --regression-field match_score",
        });
      }
      if (flags.resume && flags.outputDir === undefined) {
        throw new InputError("--resume needs --output-dir: the folder of the run to continue", {
          hint: "e.g. ats-lora train --output-dir models/ats_lora_v3 --resume",
        });
      }
      const { runTraining } = await import("./train.js");
      // The default name is reserved at once (mkdir), so two runs started together never share it.
      const reserved = flags.outputDir === undefined;
      const outputDir = flags.outputDir ?? reserveModelFolder(context.paths.models);
      const controller = new AbortController();
      let interrupts = 0;
      const onSigint = (): void => {
        interrupts += 1;
        if (interrupts === 1) controller.abort();
        else process.exit(ExitCode.interrupted);
      };
      process.on("SIGINT", onSigint);
      const display = new ProgressDisplay(context);
      try {
        const outcome = await runTraining({
          config: context.config,
          base: context.config.model.base,
          dataDir: flags.trainingData ?? context.paths.trainingPairs,
          outputDir,
          format: context.config.training.format,
          resume: flags.resume,
          overwrite: flags.overwrite,
          signal: controller.signal,
          onEvent: (event) => display.event(event),
        });
        display.done();
        // Under --json the result is the last NDJSON event, on one line like the others.
        const result = (value: Record<string, unknown>, human: () => string): void =>
          context.reporter.json ? void process.stdout.write(`${JSON.stringify(value)}\n`) : context.reporter.result(value, human);
        if (outcome.status === "cancelled") {
          const resume = resumeCommand(outputDir);
          result({ event: "result", ...outcome, resume_command: resume }, () =>
            `stopped at step ${outcome.step}/${outcome.total}; checkpoint ${outcome.checkpoint ?? "none"}\nresume with: ${resume}`,
          );
          process.exitCode = ExitCode.interrupted;
          return;
        }
        const metrics = outcome.metrics;
        result({ event: "result", ...outcome }, () =>
          [
            `adapter written to ${outcome.output_dir}`,
            `steps ${metrics.steps}; loss on ${metrics.train_loss_sample_rows} training rows ${fmt(metrics.train_loss_first)} → ${fmt(metrics.train_loss_last)}; mean training loss ${fmt(metrics.train_loss)}; validation loss ${fmt(metrics.eval_loss)}`,
            `${metrics.tokens} tokens at ${metrics.tokens_per_second ?? "–"} tokens/s, ${metrics.wall_seconds} s, peak memory ${(metrics.peak_memory_bytes / 2 ** 30).toFixed(2)} GiB (${metrics.peak_memory_kind}), ${metrics.quantization} on ${metrics.device}`,
            `log ${outcome.log_file}`,
          ].join("\n"),
        );
      } catch (error) {
        // A run refused before it wrote anything gives its reserved name back.
        if (reserved && fs.existsSync(outputDir) && fs.readdirSync(outputDir).length === 0) fs.rmdirSync(outputDir);
        throw error;
      } finally {
        display.done();
        process.off("SIGINT", onSigint);
      }
    });
}

const fmt = (value: number | null | undefined): string => (value === null || value === undefined ? "–" : value.toFixed(4));

/** The command line that was run, with --resume and the output folder pinned. */
function resumeCommand(outputDir: string): string {
  const args = process.argv.slice(2).filter((arg) => arg !== "--resume" && arg !== "--overwrite");
  const hasOutput = args.some((arg) => arg === "--output-dir" || arg === "--output_dir" || arg.startsWith("--output-dir=") || arg.startsWith("--output_dir="));
  const quoted = [...args, ...(hasOutput ? [] : ["--output-dir", outputDir]), "--resume"].map((arg) =>
    /^[\w./:=@,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`,
  );
  return `ats-lora ${quoted.join(" ")}`;
}

/** A live progress line on a terminal, a line per logging step elsewhere, NDJSON events under --json. */
class ProgressDisplay {
  private live = false;
  private lastPrinted = -1;

  constructor(private readonly context: RunContext) {}

  event(event: TrainEvent): void {
    const { reporter } = this.context;
    if (reporter.json) {
      process.stdout.write(`${JSON.stringify({ event: event.method, ...event.params })}\n`);
      if (event.method !== "started") return;
    }
    switch (event.method) {
      case "started": {
        const { worker, data } = event.params;
        const bnb = worker.bitsandbytes;
        reporter.info(
          `worker: Python ${worker.python.version}, torch ${worker.packages.torch}, ${worker.device === "cuda" ? worker.cuda.devices.map((d) => d.name).join(", ") : "CPU"}; bitsandbytes ${bnb.installed ? `${bnb.version} (${bnb.devices.join(", ") || "no device"})` : "not installed"}`,
        );
        reporter.info(`data: ${data.train} ${data.format} training rows, ${data.val} validation rows from ${data.dir}`);
        break;
      }
      case "log":
        this.clear();
        reporter.info(event.params.message);
        break;
      case "checkpoint":
        this.clear();
        reporter.info(`checkpoint at step ${event.params.step}: ${event.params.path}`);
        break;
      case "cancelling":
        this.clear();
        reporter.info("stopping: saving a checkpoint (Ctrl-C again to quit at once)…");
        break;
      case "progress": {
        const p = event.params;
        if (reporter.quiet) return;
        const line = `${p.stage} ${p.step}/${p.total}${p.loss != null ? ` | loss ${p.loss.toFixed(4)}` : ""}${p.learning_rate != null ? ` | lr ${p.learning_rate.toExponential(2)}` : ""}${p.tokens_per_second != null ? ` | ${Math.round(p.tokens_per_second)} tok/s` : ""}${p.eta_seconds != null ? ` | ETA ${formatSeconds(p.eta_seconds)}` : ""}`;
        if (process.stderr.isTTY) {
          process.stderr.write(`\r\x1b[2K${line}`);
          this.live = true;
        } else if (p.step === p.total || p.step - this.lastPrinted >= Math.max(1, this.context.config.training.logging_steps)) {
          process.stderr.write(`${line}\n`);
          this.lastPrinted = p.step;
        }
        break;
      }
    }
  }

  done(): void {
    this.clear();
  }

  private clear(): void {
    if (this.live) process.stderr.write("\r\x1b[2K");
    this.live = false;
  }
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, "0")}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** `ats-lora models`: base models for tests and the demo. */
export function modelsCommand(): Command {
  const command = new Command("models").description("make and inspect models");
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
      const { createTinyModel } = await import("./tiny.js");
      const info = await createTinyModel({ dir, sources: options.source, pretrainSteps: options.pretrainSteps, seed: options.seed, progress: context.progress() });
      context.reporter.result(info, () =>
        `created ${info.path}: ${info.architecture}, ${(info.parameters / 1e6).toFixed(1)}M parameters, vocabulary ${info.vocab_size}${info.pretrain_steps ? `, pretrained ${info.pretrain_steps} steps (loss ${info.pretrain_loss_first} → ${info.pretrain_loss_last})` : ""}`,
      );
    });
  return command;
}

/** `ats-lora doctor`: what this machine can do. */
export function doctorCommand(): Command {
  return new Command("doctor")
    .description("report Node, the worker's Python environment, torch, CUDA, bitsandbytes and disk")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora doctor --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { WorkerClient, workerPython } = await import("./worker-client.js");
      const disk = fs.statfsSync(fs.existsSync(context.paths.workdir) ? context.paths.workdir : process.cwd());
      const report: Record<string, unknown> = {
        node: process.versions.node,
        platform: `${os.platform()} ${os.arch()}`,
        cpus: os.cpus().length,
        memory_bytes: os.totalmem(),
        disk: { path: context.paths.workdir, free_bytes: disk.bavail * disk.bsize, total_bytes: disk.blocks * disk.bsize },
      };
      let ok = true;
      try {
        report.python_executable = workerPython();
        const { client, info } = await WorkerClient.start();
        await client.close();
        report.worker = info;
      } catch (error) {
        ok = false;
        report.worker = { error: (error as Error).message };
      }
      context.reporter.result(report, () => renderDoctor(report));
      if (!ok) process.exitCode = ExitCode.failed;
    });
}

function renderDoctor(report: Record<string, unknown>): string {
  const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  const disk = report.disk as { path: string; free_bytes: number; total_bytes: number };
  const lines = [
    `node ${report.node} on ${report.platform}, ${report.cpus} CPUs, ${gib(report.memory_bytes as number)} memory`,
    `disk at ${disk.path}: ${gib(disk.free_bytes)} free of ${gib(disk.total_bytes)}`,
  ];
  const available = report.worker as ResultOf<"initialize"> | { error: string };
  if ("error" in available) {
    lines.push(`worker: NOT AVAILABLE: ${available.error}`, "  fix: bash scripts/setup.sh, or ATS_LORA_PYTHON=/path/to/python");
    return lines.join("\n");
  }
  const worker = available;
  const packages = Object.entries(worker.packages)
    .map(([name, version]) => `${name} ${version ?? "missing"}`)
    .join(", ");
  lines.push(`worker: Python ${worker.python.version} (${worker.python.executable})`, `  ${packages}`);
  lines.push(
    worker.cuda.available
      ? `  CUDA ${worker.cuda.version}: ${worker.cuda.devices.map((d) => `${d.name} ${gib(d.total_memory_bytes)} (sm ${d.capability})`).join("; ")}`
      : "  CUDA: not available (training runs on the CPU)",
  );
  lines.push(`  bf16: ${worker.bf16 ? "yes" : "no"}`);
  const bnb = worker.bitsandbytes;
  lines.push(
    bnb.installed
      ? `  bitsandbytes ${bnb.version}: 4-bit on ${bnb.devices.join(", ") || "no device here"} → --quantization auto uses ${bnb.devices.includes(worker.device) ? "4-bit QLoRA" : "full-precision LoRA"}`
      : `  bitsandbytes: not installed (${bnb.error ?? ""}) → --quantization auto uses full-precision LoRA`,
  );
  return lines.join("\n");
}
