import { loadConfig, type ConfigOverrides } from "./config.js";
import type { OperationContext, OperationEvent } from "./operation.js";
import { createReporter, type Reporter } from "./output.js";
import { workdirPaths } from "./paths.js";
import { progressBar, silentProgress, type ProgressBarOptions, type ProgressSink } from "./progress.js";

/** The program's global options (ats-lora --workdir --config --json --quiet). */
export interface GlobalOptions {
  workdir?: string;
  config?: string;
  json?: boolean;
  quiet?: boolean;
}

/** Everything a command needs besides its own options. */
export interface RunContext extends OperationContext {
  reporter: Reporter;
  /** A progress bar on stderr, or a silent sink under --quiet. */
  progress(options?: ProgressBarOptions): ProgressSink;
}

export function createRunContext(globals: GlobalOptions, overrides?: ConfigOverrides): RunContext {
  const config = loadConfig({ configFile: globals.config, overrides });
  const quiet = globals.quiet ?? false;
  return {
    paths: workdirPaths(globals.workdir ?? process.cwd()),
    config,
    reporter: createReporter({ json: globals.json ?? false, quiet }),
    progress: (options) => (quiet ? silentProgress : progressBar(options)),
  };
}

/** Draws an operation's events for a person: a progress bar per stage, notes and warnings on stderr. */
export interface EventRenderer {
  onEvent(event: OperationEvent): void;
  /** Removes a bar still drawn (call when the operation settles, also on failure). */
  done(): void;
}

export function renderEvents(context: Pick<RunContext, "reporter" | "progress">): EventRenderer {
  let bar: ProgressSink | undefined;
  let stage: string | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
    stage = undefined;
  };
  return {
    onEvent(event) {
      if (event.type === "progress") {
        if (event.stage !== stage || bar === undefined) {
          stop();
          stage = event.stage;
          bar = context.progress({ unit: event.unit });
          bar.start(event.total, event.stage);
        }
        bar.update(event.done);
        if (event.done >= event.total) stop();
        return;
      }
      stop();
      if (event.type === "warning") context.reporter.warn(event.message, event.details);
      else context.reporter.info(event.message);
    },
    done: stop,
  };
}
