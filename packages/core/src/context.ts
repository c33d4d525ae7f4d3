import { loadConfig, type AtsConfig, type ConfigOverrides } from "./config.js";
import { createReporter, type Reporter } from "./output.js";
import { workdirPaths, type WorkdirPaths } from "./paths.js";
import { progressBar, silentProgress, type ProgressBarOptions, type ProgressSink } from "./progress.js";

/** The program's global options (ats-lora --workdir --config --json --quiet). */
export interface GlobalOptions {
  workdir?: string;
  config?: string;
  json?: boolean;
  quiet?: boolean;
}

/** Everything a command needs besides its own options. */
export interface RunContext {
  paths: WorkdirPaths;
  config: AtsConfig;
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
