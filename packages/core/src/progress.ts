import cliProgress from "cli-progress";

/** What long-running library code reports to; the CLI decides how (or whether) to draw it. */
export interface ProgressSink {
  start(total: number, label: string): void;
  update(value: number): void;
  stop(): void;
}

/** Reports nothing: the library default, and the CLI's under --quiet. */
export const silentProgress: ProgressSink = {
  start() {},
  update() {},
  stop() {},
};

export interface ProgressBarOptions {
  stream?: NodeJS.WriteStream;
  /** Format of the value and total, e.g. bytes as MB. */
  unit?: "count" | "bytes";
}

/**
 * A progress bar on stderr (cli-progress). Drawn only where stderr is a terminal, so logs and CI output stay
 * clean; elsewhere it prints nothing.
 */
export function progressBar(options: ProgressBarOptions = {}): ProgressSink {
  const stream = options.stream ?? process.stderr;
  if (!stream.isTTY) return silentProgress;
  const bytes = options.unit === "bytes";
  const format = (value: number): string => (bytes ? `${(value / 1e6).toFixed(1)} MB` : String(value));
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(total, label) {
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${label} [{bar}] {percentage}% | {done}/{all} | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { done: format(0), all: format(total) });
    },
    update(value) {
      bar?.update(value, { done: format(value) });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
