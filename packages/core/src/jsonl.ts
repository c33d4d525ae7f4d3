import fs from "node:fs";
import { TextDecoder } from "node:util";
import type { z } from "zod";
import { InputError } from "./errors.js";

/**
 * One line of a JSONL file: its 1-based number, and either the parsed value or why it could not be used, with
 * the field the problem is in ("(line)" for the whole line).
 */
export type JsonlLine =
  | { lineNumber: number; ok: true; value: unknown; text: string }
  | { lineNumber: number; ok: false; field: string; problem: string; text: string };

export interface ReadJsonlOptions {
  /** Called with the number of bytes read so far, for progress. */
  onBytes?: (bytesRead: number) => void;
  /** Read buffer size; lines may be longer, they are assembled across reads. */
  chunkBytes?: number;
  /** A longer line is reported, and skipped to its newline without being held in memory. */
  maxLineBytes?: number;
  /** Deepest nesting of arrays and objects accepted; deeper values would overflow recursive code downstream. */
  maxDepth?: number;
  /** What `-` reads: standard input (fd 0) unless a test gives another descriptor. */
  stdinFd?: number;
}

/** The file name `-` reads standard input; messages call it this. */
export const STDIN_FILE = "-";
export const STDIN_NAME = "<stdin>";
/** How a JSONL source is named in messages: `<stdin>` for `-`. */
export function jsonlSourceName(file: string): string {
  return file === STDIN_FILE ? STDIN_NAME : file;
}

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
// Far beyond real data, far below the ~4,500 levels at which JSON.stringify and recursive walks overflow.
export const DEFAULT_MAX_DEPTH = 512;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Streams a JSONL file line by line, synchronously (so a caller can hold a better-sqlite3 transaction open
 * around it) and with flat memory: only the current line is held. Blank lines are skipped but still counted,
 * so every line number matches what an editor shows. Each line is decoded as strict UTF-8: invalid bytes are
 * reported, not replaced. `-` reads standard input. Lines over `maxLineBytes`, nesting over `maxDepth`,
 * unpaired surrogates and out-of-range numbers are reported as bad lines, so callers never meet them.
 */
export function* readJsonl(file: string, options: ReadJsonlOptions = {}): Generator<JsonlLine> {
  const fromStdin = file === STDIN_FILE;
  const fd = fromStdin ? (options.stdinFd ?? 0) : openJsonl(file);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const parse = (bytes: Buffer, lineNumber: number) => parseLine(bytes, lineNumber, decoder, options.maxDepth ?? DEFAULT_MAX_DEPTH);
  const tooLong = (lineNumber: number): JsonlLine => ({
    lineNumber,
    ok: false,
    field: "(line)",
    problem: `line longer than ${maxLineBytes} bytes`,
    text: "",
  });
  const buffer = Buffer.allocUnsafe(options.chunkBytes ?? 1 << 20);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  // Past the limit the rest of the line is read but not kept, so an endless line costs no memory.
  let overlong = false;
  let lineNumber = 0;
  let bytesRead = 0;
  try {
    for (;;) {
      const n = readChunk(fd, buffer, file);
      if (n === 0) break;
      bytesRead += n;
      let start = 0;
      for (let i = buffer.indexOf(NEWLINE, 0); i !== -1 && i < n; i = buffer.indexOf(NEWLINE, i + 1)) {
        lineNumber += 1;
        let line: JsonlLine | undefined;
        if (overlong || pendingBytes + (i - start) > maxLineBytes) {
          line = tooLong(lineNumber);
        } else {
          pending.push(buffer.subarray(start, i));
          line = parse(Buffer.concat(pending), lineNumber);
        }
        pending = [];
        pendingBytes = 0;
        overlong = false;
        start = i + 1;
        if (line) yield line;
      }
      if (start < n && !overlong) {
        if (pendingBytes + (n - start) > maxLineBytes) {
          overlong = true;
          pending = [];
          pendingBytes = 0;
        } else {
          // Copy the unfinished tail: the buffer is reused by the next read.
          pending.push(Buffer.from(buffer.subarray(start, n)));
          pendingBytes += n - start;
        }
      }
      options.onBytes?.(bytesRead);
    }
    if (overlong) {
      yield tooLong(lineNumber + 1);
    } else if (pending.length > 0) {
      lineNumber += 1;
      const line = parse(Buffer.concat(pending), lineNumber);
      if (line) yield line;
    }
  } finally {
    if (!fromStdin) fs.closeSync(fd);
  }
}

function openJsonl(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : (code ?? String(error))}`, {
      cause: error,
    });
  }
  // Opening a folder succeeds on Linux; only the first read fails, with a bare EISDIR.
  if (fs.fstatSync(fd).isDirectory()) {
    fs.closeSync(fd);
    throw new InputError(`${file} is a folder, not a JSONL file`);
  }
  return fd;
}

const retryWait = new Int32Array(new SharedArrayBuffer(4));

function readChunk(fd: number, buffer: Buffer, file: string): number {
  for (;;) {
    try {
      return fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Standard input may be a non-blocking pipe or terminal: wait for data rather than fail.
      if (code === "EAGAIN") {
        Atomics.wait(retryWait, 0, 0, 10);
        continue;
      }
      if (code === "EOF") return 0;
      throw new InputError(`cannot read ${jsonlSourceName(file)}: ${code ?? String(error)}`, { cause: error });
    }
  }
}

/** A validated record and the line it came from. */
export interface JsonlRecord<T> {
  lineNumber: number;
  value: T;
}

/**
 * Every record of a small JSONL file, each checked against a zod schema. Any bad line makes it an InputError
 * that lists FILE:LINE: field: problem (the first `maxProblems`), so nothing is used from a half-valid file.
 */
export function readRecords<S extends z.ZodType>(file: string, schema: S, options: { what: string; maxProblems?: number }): Array<JsonlRecord<z.infer<S>>> {
  const records: Array<JsonlRecord<z.infer<S>>> = [];
  const problems: string[] = [];
  for (const line of readJsonl(file)) {
    if (!line.ok) {
      problems.push(`${file}:${line.lineNumber}: ${line.field === "(line)" ? "" : `${line.field}: `}${line.problem}`);
      continue;
    }
    const parsed = schema.safeParse(line.value);
    if (parsed.success) {
      records.push({ lineNumber: line.lineNumber, value: parsed.data });
      continue;
    }
    for (const issue of parsed.error.issues) {
      const field = issue.path.join(".") || "(line)";
      const message = issue.code === "unrecognized_keys" ? `unknown field ${issue.keys.join(", ")}` : issue.message;
      problems.push(`${file}:${line.lineNumber}: ${field}: ${message}`);
    }
  }
  if (problems.length > 0) {
    const max = options.maxProblems ?? 20;
    throw new InputError(`${file} has ${problems.length} problem(s); it is not a valid ${options.what} file`, {
      details: [...problems.slice(0, max), ...(problems.length > max ? [`… and ${problems.length - max} more`] : [])],
    });
  }
  if (records.length === 0) throw new InputError(`${file} holds no ${options.what} records`);
  return records;
}

function parseLine(bytes: Buffer, lineNumber: number, decoder: TextDecoder, maxDepth: number): JsonlLine | undefined {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === CARRIAGE_RETURN) end -= 1;
  let body = bytes.subarray(0, end);
  // A UTF-8 byte-order mark on the first line is tolerated.
  if (lineNumber === 1 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) body = body.subarray(3);
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    const offset = firstInvalidUtf8Offset(body);
    return { lineNumber, ok: false, field: "(line)", problem: `not valid UTF-8 (byte ${offset + 1} of the line)`, text: "" };
  }
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { lineNumber, ok: false, field: "(line)", problem: `not valid JSON: ${(error as Error).message}`, text };
  }
  // Strict UTF-8 text holds no surrogates, so only a \u escape can bring an unpaired one in.
  const problem = structuralProblem(value, maxDepth, text.includes("\\u"));
  if (problem) return { lineNumber, ok: false, ...problem, text };
  return { lineNumber, ok: true, value, text };
}

// With the u flag a well-formed pair is one code point, so this matches only an unpaired surrogate.
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const NOT_UNICODE = "which is not valid Unicode";
// Native (Node 20+, not yet in the ES2023 typings) and several times faster than the regex, which only
// names the culprit.
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();
const MAX_PATH_SEGMENTS = 8;

/**
 * What JSON.parse accepts but nothing downstream should see: nesting deep enough to overflow recursive code
 * (this walk recurses too, but checks the depth first), unpaired surrogates (they cannot be stored as UTF-8,
 * so a re-import would differ), and numbers beyond a double, which JSON.parse reads as Infinity.
 */
function structuralProblem(root: unknown, maxDepth: number, checkSurrogates: boolean): { field: string; problem: string } | undefined {
  const path: Array<string | number> = [];
  const problem = findProblem(root, path, maxDepth, checkSurrogates);
  if (problem === undefined) return undefined;
  // A path hundreds of levels deep says no more than its start does.
  const field = path.length > MAX_PATH_SEGMENTS ? `${formatFieldPath(path.slice(0, MAX_PATH_SEGMENTS))}…` : formatFieldPath(path);
  return { field, problem };
}

/** The first problem in line order; `path` is left pointing at it. */
function findProblem(value: unknown, path: Array<string | number>, maxDepth: number, checkSurrogates: boolean): string | undefined {
  if (typeof value === "string") {
    return checkSurrogates && !isWellFormed(value) ? `contains an unpaired surrogate (${loneSurrogate(value)}), ${NOT_UNICODE}` : undefined;
  }
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : `number out of range (got ${value}; JSON numbers here must be within ±1.8e308)`;
  }
  if (value === null || typeof value !== "object") return undefined;
  if (path.length >= maxDepth) return `nesting deeper than ${maxDepth} levels`;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) {
      path.push(index);
      const problem = findProblem(value[index], path, maxDepth, checkSurrogates);
      if (problem !== undefined) return problem;
      path.pop();
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    path.push(key);
    if (checkSurrogates && !isWellFormed(key)) return `field name contains an unpaired surrogate (${loneSurrogate(key)}), ${NOT_UNICODE}`;
    const problem = findProblem((value as Record<string, unknown>)[key], path, maxDepth, checkSurrogates);
    if (problem !== undefined) return problem;
    path.pop();
  }
  return undefined;
}

function loneSurrogate(text: string): string {
  return escapeUnit(LONE_SURROGATE.exec(text)?.[0] ?? "\ufffd");
}

/**
 * A field path as `feedback[1].rating`, "(line)" for the whole line. Characters outside printable ASCII are
 * shown as \uXXXX, so a look-alike ("qu\u0435ry", Cyrillic е) is visibly not the field it resembles.
 */
export function formatFieldPath(keyPath: readonly PropertyKey[]): string {
  let out = "";
  for (const key of keyPath) {
    const name = typeof key === "symbol" ? String(key) : String(key).replace(/[^\x20-\x7e]/g, escapeUnit);
    out += typeof key === "number" ? `[${key}]` : out === "" ? name : `.${name}`;
  }
  return out === "" ? "(line)" : out;
}

function escapeUnit(unit: string): string {
  return `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** The offset of the first byte of the first malformed UTF-8 sequence, for the error message. */
function firstInvalidUtf8Offset(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    // The strict decoder judges overlong forms and surrogates; this only needs to find where it failed.
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(i, i + length));
    } catch {
      return i;
    }
    i += length;
  }
  return bytes.length;
}
