import type { RunContext } from "@ats-lora/core";
import type { TrainOutcome } from "../train.js";

/** The run's outcome; under --json the last NDJSON event, on one line like the others. */
export function renderOutcome(context: RunContext, outcome: TrainOutcome, resumeCommand: () => string): void {
  const result = (value: Record<string, unknown>, human: () => string): void =>
    context.reporter.json ? void process.stdout.write(`${JSON.stringify(value)}\n`) : context.reporter.result(value, human);
  if (outcome.status === "cancelled") {
    const resume = resumeCommand();
    result({ event: "result", ...outcome, resume_command: resume }, () =>
      `stopped at step ${outcome.step}/${outcome.total}; checkpoint ${outcome.checkpoint ?? "none"}\nresume with: ${resume}`,
    );
    return;
  }
  const metrics = outcome.metrics;
  result({ event: "result", ...outcome }, () =>
    [
      `adapter written to ${outcome.output_dir}`,
      `steps ${metrics.steps}; loss on ${metrics.train_loss_sample_rows} training rows ${fmt(metrics.train_loss_first)} → ${fmt(metrics.train_loss_last)}; mean training loss ${fmt(metrics.train_loss)}; validation loss ${fmt(metrics.eval_loss)}`,
      ...validationLines(metrics),
      ...(metrics.prompts_cut > 0 || metrics.answers_truncated > 0
        ? [`to fit --max-seq-length: ${metrics.prompts_cut} prompts cut in the middle, ${metrics.answers_truncated} answers truncated at the end`]
        : []),
      `${metrics.tokens} tokens at ${metrics.tokens_per_second ?? "–"} tokens/s, ${metrics.wall_seconds} s, peak memory ${(metrics.peak_memory_bytes / 2 ** 30).toFixed(2)} GiB (${metrics.peak_memory_kind}), ${metrics.quantization} on ${metrics.device}${metrics.processes > 1 ? ` × ${metrics.processes} processes (${metrics.strategy})` : ""}`,
      `log ${outcome.log_file}`,
    ].join("\n"),
  );
}

const fmt = (value: number | null | undefined): string => (value === null || value === undefined ? "–" : value.toFixed(4));

/** The command line that was run (`args`: the arguments after the program), with --resume and the output folder pinned. */
export function resumeCommand(args: readonly string[], outputDir: string): string {
  const kept = args.filter((arg) => arg !== "--resume" && arg !== "--overwrite");
  const hasOutput = kept.some((arg) => arg === "--output-dir" || arg === "--output_dir" || arg.startsWith("--output-dir=") || arg.startsWith("--output_dir="));
  const quoted = [...kept, ...(hasOutput ? [] : ["--output-dir", outputDir]), "--resume"].map((arg) =>
    /^[\w./:=@,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`,
  );
  return `ats-lora ${quoted.join(" ")}`;
}

/** The validation loss by epoch, the best marked, and which step's weights the adapter holds. */
function validationLines(metrics: Extract<TrainOutcome, { status: "completed" }>["metrics"]): string[] {
  const history = metrics.val_loss_by_epoch;
  if (history.length === 0) return [];
  const best = metrics.best_epoch;
  const epochs = history.map((entry) => `${+entry.epoch.toFixed(2)}: ${fmt(entry.loss)}${best && entry.step === best.step ? " (best)" : ""}`).join(", ");
  const adapter = best && metrics.adapter_step === best.step ? `the best epoch's (step ${best.step})` : `the last step's (step ${metrics.adapter_step})`;
  return [`validation loss by epoch ${epochs}${metrics.stopped_early ? "; stopped early" : ""}; adapter: ${adapter}`];
}
