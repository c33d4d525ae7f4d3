import fs from "node:fs";
import { TextDecoder } from "node:util";
import type { z } from "zod";
import { InputError } from "./errors.js";

/** One line of a JSONL file: its 1-based number, and either the parsed value or why it could not be parsed. */
export type JsonlLine =
  | { lineNumber: number; ok: true; value: unknown; text: string }
  | { lineNumber: number; ok: false; problem: string; text: string };

export interface ReadJsonlOptions {
  /** Called with the number of bytes read so far, for progress. */
  onBytes?: (bytesRead: number) => void;
  /** Read buffer size; lines may be longer, they are assembled across reads. */
  chunkBytes?: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Streams a JSONL file line by line, synchronously (so a caller can hold a better-sqlite3 transaction open
 * around it) and with flat memory: only the current line is held. Blank lines are skipped but still counted,
 * so every line number matches what an editor shows. Each line is decoded as strict UTF-8: invalid bytes are
 * reported, not replaced.
 */
export function* readJsonl(file: string, options: ReadJsonlOptions = {}): Generator<JsonlLine> {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : (code ?? String(error))}`, {
      cause: error,
    });
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const buffer = Buffer.allocUnsafe(options.chunkBytes ?? 1 << 20);
  let pending: Buffer[] = [];
  let lineNumber = 0;
  let bytesRead = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      bytesRead += n;
      let start = 0;
      for (let i = buffer.indexOf(NEWLINE, 0); i !== -1 && i < n; i = buffer.indexOf(NEWLINE, i + 1)) {
        pending.push(buffer.subarray(start, i));
        lineNumber += 1;
        const line = parseLine(Buffer.concat(pending), lineNumber, decoder);
        pending = [];
        start = i + 1;
        if (line) yield line;
      }
      // Copy the unfinished tail: the buffer is reused by the next read.
      if (start < n) pending.push(Buffer.from(buffer.subarray(start, n)));
      options.onBytes?.(bytesRead);
    }
    if (pending.length > 0) {
      lineNumber += 1;
      const line = parseLine(Buffer.concat(pending), lineNumber, decoder);
      if (line) yield line;
    }
  } finally {
    fs.closeSync(fd);
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
      problems.push(`${file}:${line.lineNumber}: ${line.problem}`);
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

function parseLine(bytes: Buffer, lineNumber: number, decoder: TextDecoder): JsonlLine | undefined {
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
    return { lineNumber, ok: false, problem: `not valid UTF-8 (byte ${offset + 1} of the line)`, text: "" };
  }
  if (text.trim() === "") return undefined;
  try {
    return { lineNumber, ok: true, value: JSON.parse(text), text };
  } catch (error) {
    return { lineNumber, ok: false, problem: `not valid JSON: ${(error as Error).message}`, text };
  }
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
