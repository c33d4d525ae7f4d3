import type { AtsConfig } from "./config.js";
import { AtsError, ExitCode } from "./errors.js";
import type { WorkdirPaths } from "./paths.js";
import type { ProgressSink } from "./progress.js";

/**
 * The operations layer (DESIGN.md): what the CLI, the HTTP service, the demo and tests call. An operation takes
 * a typed input, this context and OperationOptions, reports through one typed event callback and returns a
 * typed result. It never prints, never reads process.argv and never exits; its callers render.
 */
export interface OperationContext {
  paths: WorkdirPaths;
  config: AtsConfig;
}

/** Long work: `done` of `total` items (or bytes) of one stage. A new stage starts when `stage` changes. */
export interface ProgressEvent {
  type: "progress";
  stage: string;
  done: number;
  total: number;
  unit: "count" | "bytes";
}

/** Words for the person running it: a stage that begins, a note, or a warning (with detail lines). */
export interface NoticeEvent {
  type: "stage" | "info" | "warning";
  message: string;
  details?: readonly string[];
}

export type OperationEvent = ProgressEvent | NoticeEvent;

export interface OperationOptions<Event = OperationEvent> {
  /** Aborting asks the operation to stop at its next safe point; it then rejects with an `interrupted` error. */
  signal?: AbortSignal;
  onEvent?: (event: Event) => void;
}

/** The `interrupted` error (exit 130) an operation throws when its signal aborts. */
export function interruptedError(what: string, hint?: string): AtsError {
  return new AtsError(`${what} interrupted`, { exitCode: ExitCode.interrupted, hint });
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string, hint?: string): void {
  if (signal?.aborted) throw interruptedError(what, hint);
}

/**
 * A ProgressSink whose calls become progress events: for library code written against ProgressSink, called from
 * an operation. `start`'s label names the stage.
 */
export function progressEvents(onEvent: ((event: ProgressEvent) => void) | undefined, unit: ProgressEvent["unit"] = "count"): ProgressSink {
  let stage = "";
  let total = 0;
  let done = 0;
  return {
    start(count, label) {
      stage = label;
      total = count;
      done = 0;
      onEvent?.({ type: "progress", stage, done, total, unit });
    },
    update(value) {
      done = value;
      onEvent?.({ type: "progress", stage, done, total, unit });
    },
    stop() {
      if (done < total) onEvent?.({ type: "progress", stage, done: total, total, unit });
    },
  };
}
