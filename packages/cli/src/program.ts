import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import { isAtsError, ExitCode } from "@ats-lora/core";
import { buildDbCommand } from "@ats-lora/dataset-builder/command";
import { evalCommand, matchCommand } from "@ats-lora/evaluator/command";
import { chatCommand } from "@ats-lora/inference/command";
import { exportCommand } from "@ats-lora/models/command";
import { collectCommand } from "@ats-lora/feedback/command";
import { ragCommand } from "@ats-lora/rag/command";
import { trainCommand } from "@ats-lora/trainer/command";
import { serveCommand } from "@ats-lora/serve/command";
import { doctorCommand } from "./commands/doctor.js";
import { modelsCommand } from "./commands/models.js";
import { configCommand } from "./commands/config.js";
import { demoCommand } from "./commands/demo.js";
import { openMetadata, openRetriever, openRunner, resolveModel } from "./wiring.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** The `ats-lora` program: global options, and each package's command mounted under it. */
export function buildProgram(): Command {
  const program = new Command("ats-lora")
    .description(
      "feedback-driven QLoRA fine-tuning for applicant-tracking LLMs:\ncollect feedback → build-db → rag build → train → eval, on a laptop or on CUDA GPUs",
    )
    .version(version, "-V, --version", "print the version")
    .addOption(new Option("--workdir <dir>", "folder holding feedback_db/, vector_store/ and models/ (default: the current folder)"))
    .addOption(new Option("--config <file>", "a YAML file of settings over configs/default.yaml"))
    .addOption(new Option("--json", "machine-readable JSON results on stdout"))
    .addOption(new Option("-q, --quiet", "no progress bars or notes on stderr (warnings and errors still)"))
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Examples:
  $ ats-lora demo                                   # the whole loop on the bundled sample data
  $ ats-lora --workdir W collect import data/samples/interactions.jsonl
  $ ats-lora --workdir W collect stats --json
  $ ats-lora --workdir W models pull smollm2-135m-instruct
  $ ats-lora --workdir W chat --model W/models/smollm2-135m-instruct --prompt "Say OK"
  $ ats-lora config show

Exit codes: 0 ok, 1 a run failed, 2 bad usage or bad input.`,
    );
  program.addCommand(collectCommand());
  program.addCommand(buildDbCommand({ openRetriever }));
  program.addCommand(ragCommand());
  program.addCommand(trainCommand());
  program.addCommand(evalCommand({ openRunner, openRetriever, openMetadata }));
  program.addCommand(matchCommand());
  program.addCommand(modelsCommand());
  program.addCommand(exportCommand());
  program.addCommand(chatCommand({ resolveModel }));
  program.addCommand(serveCommand());
  program.addCommand(doctorCommand());
  program.addCommand(configCommand());
  program.addCommand(demoCommand());
  applyToAll(program, (command) => command.exitOverride());
  return program;
}

function applyToAll(command: Command, apply: (command: Command) => void): void {
  apply(command);
  for (const sub of command.commands) applyToAll(sub, apply);
}

/**
 * The original specification's snake_case option spellings (--training_data, --output_dir, --batch_size) become the kebab-case
 * ones commander defines; values and everything after a bare `--` are left alone.
 */
export function kebabOptions(argv: readonly string[]): string[] {
  const out: string[] = [];
  let literal = false;
  for (const arg of argv) {
    if (literal || !arg.startsWith("--") || arg === "--") {
      if (arg === "--") literal = true;
      out.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = equals === -1 ? arg : arg.slice(0, equals);
    out.push(name.replace(/_/g, "-") + (equals === -1 ? "" : arg.slice(equals)));
  }
  return out;
}

/** Runs the program and returns the exit code; prints errors (never a stack trace unless ATS_LORA_DEBUG). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(kebabOptions(argv));
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message; help and --version end normally, everything else is bad usage.
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return ExitCode.ok;
      return ExitCode.badInput;
    }
    if (isAtsError(error)) {
      process.stderr.write(`error: ${error.message}\n`);
      for (const detail of error.details) process.stderr.write(`  ${detail}\n`);
      if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
      if (process.env.ATS_LORA_DEBUG) process.stderr.write(`${error.stack}\n`);
      return error.exitCode;
    }
    process.stderr.write(`error: ${(error as Error).message ?? String(error)}\n`);
    process.stderr.write(
      process.env.ATS_LORA_DEBUG ? `${(error as Error).stack}\n` : "(set ATS_LORA_DEBUG=1 for the stack trace)\n",
    );
    return ExitCode.failed;
  }
}
