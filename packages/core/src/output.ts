/**
 * Where a command's words go. stdout carries only the result (JSON under --json, a human rendering
 * otherwise); everything else (progress, warnings, notes) goes to stderr, so `--json | jq` always works.
 */
export interface Reporter {
  readonly json: boolean;
  readonly quiet: boolean;
  /** A note for the human on stderr; dropped under --quiet. */
  info(message: string): void;
  /** A warning on stderr, with indented detail lines; kept under --quiet. */
  warn(message: string, details?: readonly string[]): void;
  /** The command's result: `value` as one JSON document under --json, `human` text otherwise. */
  result(value: unknown, human: () => string): void;
}

export interface ReporterOptions {
  json?: boolean;
  quiet?: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export function createReporter(options: ReporterOptions = {}): Reporter {
  const json = options.json ?? false;
  const quiet = options.quiet ?? false;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  return {
    json,
    quiet,
    info(message) {
      if (!quiet) stderr.write(`${message}\n`);
    },
    warn(message, details = []) {
      stderr.write(`warning: ${message}\n`);
      for (const detail of details) stderr.write(`  ${detail}\n`);
    },
    result(value, human) {
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else {
        const text = human();
        if (text !== "") stdout.write(text.endsWith("\n") ? text : `${text}\n`);
      }
    },
  };
}
