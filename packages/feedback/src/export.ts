import fs from "node:fs";
import path from "node:path";
import { InputError, isAtsError, isProcessAlive, RunError, silentProgress, type ProgressSink } from "@ats-lora/core";
import type { Feedback, Interaction } from "./schema.js";
import { redactValue } from "./redact.js";
import type { FeedbackStore } from "./store.js";

export interface ExportOptions {
  /** Mask e-mail addresses, phone numbers and profile links in every text field (ids and timestamps kept). */
  redact?: boolean;
  progress?: ProgressSink;
}

export interface ExportReport {
  file: string;
  interactions: number;
  feedback: number;
  redacted: boolean;
  /** Things the user should hear about, e.g. the leftovers of a killed export that were removed. */
  notes: string[];
}

/** One exported line: the interaction with its feedback embedded (one object, or an array for several). */
export type ExportedLine = Interaction & { feedback?: Omit<Feedback, "interaction_id"> | Array<Omit<Feedback, "interaction_id">> };

export function toExportedLine(interaction: Interaction, feedback: readonly Feedback[]): ExportedLine {
  const reviews = feedback.map(({ interaction_id: _, ...review }) => review);
  const line: ExportedLine = { ...interaction };
  if (reviews.length === 1) line.feedback = reviews[0]!;
  else if (reviews.length > 1) line.feedback = reviews;
  return line;
}

/**
 * Writes the store as interactions.jsonl with embedded feedback, the format `collect import` reads, so
 * import(export(db)) reproduces the database. Written to a temporary file (OUT.PID.partial) and renamed into
 * place, so a failed export never leaves half a file behind; the partial files of killed exports to the same
 * OUT are removed on the next one. Refuses (InputError) to overwrite the store itself, its -wal/-shm/-journal
 * files, any SQLite database, a folder, and any existing file that is not a previous export.
 */
export function exportJsonl(store: FeedbackStore, outFile: string, options: ExportOptions = {}): ExportReport {
  const progress = options.progress ?? silentProgress;
  const report: ExportReport = { file: outFile, interactions: 0, feedback: 0, redacted: options.redact ?? false, notes: [] };
  checkExportTarget(store.file, outFile);
  const dir = path.dirname(path.resolve(outFile));
  createFolder(dir, outFile);
  report.notes.push(...removeStalePartials(outFile));
  const temporary = `${outFile}.${process.pid}.partial`;
  let fd: number;
  try {
    fd = fs.openSync(temporary, "w");
  } catch (error) {
    throw writeError(error, outFile);
  }
  const total = store.counts().interactions;
  progress.start(total, "export");
  try {
    let buffered = "";
    for (const { interaction, feedback } of store.interactions()) {
      let line = toExportedLine(interaction, feedback);
      if (options.redact) line = redactLine(line);
      buffered += `${JSON.stringify(line)}\n`;
      report.interactions += 1;
      report.feedback += feedback.length;
      if (buffered.length > 1 << 20) {
        fs.writeSync(fd, buffered);
        buffered = "";
        progress.update(report.interactions);
      }
    }
    fs.writeSync(fd, buffered);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temporary, outFile);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(temporary, { force: true });
    throw isAtsError(error) ? error : writeError(error, outFile);
  } finally {
    progress.stop();
  }
  return report;
}

/**
 * Masks personal data in every text field of a line, keys included, but not the record ids and timestamps:
 * an id that looks like a phone number (a numeric ATS id) must stay the id, or the export no longer imports.
 */
function redactLine(line: ExportedLine): ExportedLine {
  const out = redactRecord(line);
  if (Array.isArray(line.feedback)) out.feedback = line.feedback.map(redactRecord);
  else if (line.feedback !== undefined) out.feedback = redactRecord(line.feedback);
  return out;
}

const KEPT_AS_THEY_ARE = new Set(["id", "created_at", "origin", "rating", "feedback"]);

function redactRecord<T extends object>(record: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) out[key] = KEPT_AS_THEY_ARE.has(key) ? value : redactValue(value);
  return out as T;
}

const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

/** Refuses to overwrite what an export must never replace; see exportJsonl. */
function checkExportTarget(storeFile: string, outFile: string): void {
  const target = canonicalPath(outFile);
  const hint = "choose another --out, e.g. --out interactions.jsonl";
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    const own = `${storeFile}${suffix}`;
    if (target !== canonicalPath(own) && !sameFile(outFile, own)) continue;
    throw suffix === ""
      ? new InputError(`${outFile} is the feedback store itself (${storeFile}): refusing to write the export onto it`, { hint })
      : new InputError(`${outFile} is the feedback store's own file (${own}): refusing to overwrite it`, { hint });
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(outFile);
  } catch {
    return; // nothing there yet
  }
  if (stat.isDirectory()) {
    throw new InputError(`${outFile} is a folder: --out takes the JSONL file to write`, {
      hint: `e.g. --out ${path.join(outFile, "interactions.jsonl")}`,
    });
  }
  if (!stat.isFile()) throw new InputError(`${outFile} is not a regular file: refusing to write the export onto it`, { hint });
  if (stat.size === 0) return;
  const head = readHead(outFile);
  if (head.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER)) {
    throw new InputError(`${outFile} is an SQLite database, not a JSONL export: refusing to overwrite it`, {
      hint: "choose another --out; an export is a .jsonl file",
    });
  }
  if (!isExportLine(head)) {
    throw new InputError(`${outFile} exists and is not a JSONL export of interactions: refusing to overwrite it`, {
      hint: `choose another --out, or remove ${outFile} first if you mean to replace it`,
    });
  }
}

/** The path with symbolic links resolved, also for a file that does not exist yet (through its folder). */
function canonicalPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    try {
      return path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
    } catch {
      return path.resolve(file);
    }
  }
}

/** Whether two existing paths are one file (a hard link too). */
function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

const FIRST_LINE_LIMIT = 16 << 20;

/** The file's first line (up to a limit), as bytes. */
function readHead(file: string): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = Buffer.alloc(1 << 16);
      const n = fs.readSync(fd, chunk, 0, chunk.length, size);
      if (n === 0) break;
      const newline = chunk.subarray(0, n).indexOf(0x0a);
      chunks.push(chunk.subarray(0, newline === -1 ? n : newline));
      size += n;
      if (newline !== -1 || size >= FIRST_LINE_LIMIT) break;
    }
    return Buffer.concat(chunks);
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether a first line is what an export writes: an interaction (id, query, response). */
function isExportLine(line: Buffer): boolean {
  try {
    const value = JSON.parse(line.toString("utf8")) as Record<string, unknown> | null;
    return (
      value !== null &&
      typeof value === "object" &&
      typeof value.id === "string" &&
      typeof value.query === "string" &&
      typeof value.response === "string"
    );
  } catch {
    return false;
  }
}

/**
 * Removes OUT.PID.partial files left by exports to the same OUT that were killed: those whose process is no
 * longer running (a pid that is running, even as another user, is left alone). Returns a note for each.
 */
function removeStalePartials(outFile: string): string[] {
  const dir = path.dirname(path.resolve(outFile));
  const pattern = new RegExp(`^${escapeRegExp(path.basename(outFile))}\\.(\\d+)\\.partial$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const notes: string[] = [];
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isProcessAlive(pid)) continue;
    const file = path.join(dir, name);
    try {
      fs.rmSync(file);
      notes.push(`removed ${file}, left by an export (pid ${pid}) that did not finish`);
    } catch (error) {
      notes.push(`could not remove ${file}, left by an export (pid ${pid}) that did not finish: ${(error as Error).message}`);
    }
  }
  return notes;
}


function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const NOT_WRITABLE = new Set(["EACCES", "EPERM", "EROFS"]);

function createFolder(dir: string, outFile: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw writeError(error, outFile);
  }
}

/** A failed write, naming the folder when it is one that may not be written. */
function writeError(error: unknown, outFile: string): RunError {
  const code = (error as NodeJS.ErrnoException).code ?? "";
  if (NOT_WRITABLE.has(code)) {
    let dir = path.dirname(path.resolve(outFile));
    while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    return new RunError(`cannot write ${outFile}: the folder ${dir} is not writable`, {
      cause: error,
      hint: `make it writable (chmod u+w ${dir}), or choose another --out`,
    });
  }
  return new RunError(`cannot write ${outFile}: ${(error as Error).message}`, { cause: error });
}
