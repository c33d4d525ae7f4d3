/** Exit codes shared by every command (DESIGN.md): 0 ok, 1 a run failed, 2 bad usage or bad input. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  badInput: 2,
  /** `eval --gate`: the candidate is clearly worse than what it was compared with, or missed a --require. */
  gateFailed: 3,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the user: says what was wrong, where, and what to do. */
export class AtsError extends Error {
  readonly exitCode: ExitCode;
  /** A line telling the user what to do about it. */
  readonly hint: string | undefined;
  /** Further lines (e.g. each invalid input line), printed after the message. */
  readonly details: readonly string[];

  constructor(
    message: string,
    options: { exitCode?: ExitCode; hint?: string; details?: readonly string[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AtsError";
    this.exitCode = options.exitCode ?? ExitCode.failed;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }
}

/** Bad usage or bad input: exit code 2. */
export class InputError extends AtsError {
  constructor(message: string, options: { hint?: string; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: ExitCode.badInput });
    this.name = "InputError";
  }
}

/** Input that names a record that does not exist (an interaction id): exit code 2, HTTP 404. */
export class NotFoundError extends InputError {
  constructor(message: string, options: { hint?: string; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, options);
    this.name = "NotFoundError";
  }
}

/** A request the present state refuses (a job already running, a name taken): exit code 2, HTTP 409. */
export class ConflictError extends InputError {
  constructor(message: string, options: { hint?: string; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, options);
    this.name = "ConflictError";
  }
}

/** A run that started and failed: exit code 1. */
export class RunError extends AtsError {
  constructor(message: string, options: { hint?: string; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: ExitCode.failed });
    this.name = "RunError";
  }
}

export function isAtsError(error: unknown): error is AtsError {
  return error instanceof AtsError;
}
