import type { RunContext } from "@ats-lora/core";
import type { TrainEvent } from "../train.js";

/** `train`'s events: a live progress line on a terminal, a line per logging step elsewhere, NDJSON under --json. */
export class ProgressDisplay {
  private live = false;
  private lastPrinted = -1;

  constructor(private readonly context: RunContext) {}

  event(event: TrainEvent): void {
    const { reporter } = this.context;
    if (reporter.json) {
      process.stdout.write(`${JSON.stringify({ event: event.method, ...event.params })}\n`);
      if (event.method !== "started" && event.method !== "warning") return;
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
      case "warning":
        this.clear();
        reporter.warn(event.params.message);
        break;
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
