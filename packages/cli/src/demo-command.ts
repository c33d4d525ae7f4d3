import path from "node:path";
import { Command } from "commander";
import { createRunContext, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora demo`: the loop on the bundled sample data. */
export function demoCommand(): Command {
  return new Command("demo")
    .description("run the loop on the bundled sample data in a fresh working folder (CPU only)")
    .addHelpText(
      "after",
      `
Without --workdir a new folder ats-lora-demo-YYYYMMDD-HHMMSS is made in the current folder. Running it again
in the same --workdir is safe: the import is a no-op the second time.

Example:
  $ ats-lora demo
  $ ats-lora --workdir /tmp/demo demo --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const context = createRunContext(globals);
      const [{ runDemo }, { renderStats }] = await Promise.all([import("./demo.js"), import("@ats-lora/feedback/command")]);
      const result = await runDemo({
        workdir: globals.workdir,
        config: context.config,
        progress: (unit) => context.progress({ unit }),
        onWarning: (message) => context.reporter.warn(message),
      });
      const counts = result.training_pairs.counts;
      context.reporter.result(result, () =>
        [
          `workdir ${result.workdir}`,
          ...result.imports.map(
            (report) =>
              `imported ${report.file}: ${report.interactions.inserted} new interactions (${report.interactions.unchanged} already there), ${report.feedback.inserted} new feedback`,
          ),
          "",
          renderStats(result.stats),
          "",
          `training pairs in ${path.join(result.workdir, "feedback_db", "training_pairs")}: sft ${counts.sft.total}, dpo ${counts.dpo.total}, kto ${counts.kto.total} (train/val/test ${counts.sft.train}/${counts.sft.val}/${counts.sft.test} for sft)`,
          "",
          `stages: ${result.stages.map((stage) => `${stage.name} ${stage.seconds}s`).join(", ")}`,
          `next: ats-lora --workdir ${result.workdir} collect review   # rate the interactions still awaiting review`,
        ].join("\n"),
      );
    });
}
