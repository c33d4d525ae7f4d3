import { ExitCode } from "./errors.js";

export interface Interrupt {
  signal: AbortSignal;
  /** Stops listening for Ctrl-C (call when the work is over). */
  dispose(): void;
}

/**
 * Ctrl-C for every command: the first aborts the signal (the operation stops at its next safe point and says
 * what it kept), a second exits at once with 130. `onFirst` tells the person what is happening.
 */
export function interruptOnCtrlC(onFirst?: () => void): Interrupt {
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(ExitCode.interrupted);
    onFirst?.();
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, dispose: () => void process.off("SIGINT", onSigint) };
}

/** Runs `work` with a Ctrl-C signal and stops listening when it settles. */
export async function withCtrlC<T>(work: (signal: AbortSignal) => Promise<T>, onFirst?: () => void): Promise<T> {
  const interrupt = interruptOnCtrlC(onFirst);
  try {
    return await work(interrupt.signal);
  } finally {
    interrupt.dispose();
  }
}
