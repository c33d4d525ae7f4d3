import { Command, Option } from "commander";
import { createRunContext, renderEvents, STAGES, type GlobalOptions, type Stage } from "@ats-lora/core";

/** `ats-lora models show NAME`: one adapter's card (lineage, training settings, metrics, evals, stage), or a matcher's. */
export function showCommand(): Command {
  return new Command("show")
    .description("one adapter's model card: base and its hash, training data hash and rows, settings, metrics, eval verdicts, stage, MLflow run and versions (or a TF-IDF matcher's card)")
    .argument("<name>", "the adapter's or matcher's folder under models/")
    .addHelpText("after", "\nExamples:\n  $ ats-lora models show ats_lora_v2\n  $ ats-lora --workdir W models show ats_lora_v2 --json")
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { showModel } = await import("../versions.js");
      const shown = showModel(name, context);
      context.reporter.result(shown, () => shown.markdown.trimEnd());
    });
}

const stageOption = () => new Option("--stage <stage>", "which stage").choices(STAGES).default("production");

/** `ats-lora models promote NAME`: the adapter `serve` answers with (production) or the candidate (staging). */
export function promoteCommand(): Command {
  return new Command("promote")
    .description("make an adapter the production one (what serve answers with) or the staging one; the one before stays for rollback")
    .argument("<name>", "the adapter's folder under models/")
    .addOption(stageOption())
    .addHelpText("after", "\nExamples:\n  $ ats-lora models promote ats_lora_v3\n  $ ats-lora models promote ats_lora_v4 --stage staging --json")
    .action(async (name: string, options: { stage: Stage }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { promoteModel } = await import("../versions.js");
      const events = renderEvents(context);
      const change = await promoteModel({ name, stage: options.stage }, context, { onEvent: events.onEvent });
      events.done();
      context.reporter.result(change, () => `${change.stage}: ${change.model}${change.previous === null ? "" : ` (was ${change.previous})`}${registeredLine(change.mlflow)}`);
    });
}

/** `ats-lora models rollback`: the stage goes back to the adapter it held before its latest promotion. */
export function rollbackCommand(): Command {
  return new Command("rollback")
    .description("put back the adapter a stage held before its latest promotion")
    .addOption(stageOption())
    .addHelpText("after", "\nExamples:\n  $ ats-lora models rollback\n  $ ats-lora models rollback --stage staging --json")
    .action(async (options: { stage: Stage }, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { rollbackModel } = await import("../versions.js");
      const events = renderEvents(context);
      const change = await rollbackModel({ stage: options.stage }, context, { onEvent: events.onEvent });
      events.done();
      context.reporter.result(change, () => `${change.stage}: back to ${change.model} (was ${change.previous})${registeredLine(change.mlflow)}`);
    });
}

/** The MLflow side of a stage change, for the human rendering. */
function registeredLine(registered: { registered_model: string; version: string; alias: string } | undefined): string {
  return registered ? `\nMLflow: ${registered.registered_model} version ${registered.version} has the alias ${registered.alias}` : "";
}
