import crypto from "node:crypto";
import fs from "node:fs";
import { formatFieldPath, InputError, jsonlSourceName, readJsonl, silentProgress, STDIN_FILE, type ProgressSink } from "@ats-lora/core";
import type { z } from "zod";
import { canonicalJson } from "./canonical.js";
import {
  FeedbackInputSchema,
  DEFAULT_MODEL,
  DEFAULT_REVIEWER,
  DEFAULT_TASK,
  GOLD_MODEL,
  GoldPairLineSchema,
  InteractionLineSchema,
  type Feedback,
  type FeedbackInput,
  type Interaction,
  type InteractionLine,
} from "./schema.js";
import type { FeedbackStore, ImportLedger } from "./store.js";

export interface ImportOptions {
  /** Import the valid lines of a file that has invalid ones, and list the skipped lines. */
  skipInvalid?: boolean;
  /** Replace stored records whose id reappears with different content (otherwise that is an error). */
  update?: boolean;
  /** Problems listed in full before the rest are only counted. */
  maxProblemsListed?: number;
  progress?: ProgressSink;
  /** The time given to records that carry no timestamp. */
  now?: Date;
  /** Longer lines are invalid (collect.max_line_bytes), and are skipped without being held in memory. */
  maxLineBytes?: number;
  /** What the file `-` reads: standard input unless a test gives another descriptor. */
  stdinFd?: number;
}

/** One invalid line: `FILE:LINE: field: problem`. */
export interface LineProblem {
  line: number;
  field: string;
  problem: string;
}

export interface RecordCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

export interface ImportReport {
  file: string;
  /** Non-blank lines read. */
  lines: number;
  interactions: RecordCounts;
  feedback: RecordCounts;
  gold: number;
  /** Lines not imported (only with skipInvalid; otherwise the import throws). */
  skipped_lines: number;
  /** The first problems, up to maxProblemsListed. */
  problems: LineProblem[];
  /** Problems found in all (one line may have several). */
  problem_count: number;
}

const INTERACTION_FIELDS = ["created_at", "task", "query", "context", "response", "model", "metadata", "origin"] as const;
const FEEDBACK_FIELDS = [
  "interaction_id",
  "rating",
  "correct_points",
  "incorrect_points",
  "ideal_response",
  "reviewer",
  "created_at",
] as const;

export interface RejectedFile {
  file: string;
  error: string;
  /** FILE:LINE: field: problem lines. */
  problems: readonly string[];
}

/**
 * Imports several files, each in its own transaction: a file with invalid lines is rejected whole (unless
 * skipInvalid) and the others are imported. Errors other than bad input (an unwritable store) propagate.
 */
export function importJsonlFiles(
  store: FeedbackStore,
  files: readonly string[],
  options: ImportOptions = {},
): { files: ImportReport[]; rejected: RejectedFile[] } {
  const reports: ImportReport[] = [];
  const rejected: RejectedFile[] = [];
  for (const file of files) {
    try {
      reports.push(importJsonlFile(store, file, options));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      rejected.push({ file: jsonlSourceName(file), error: error.message, problems: error.details });
    }
  }
  return { files: reports, rejected };
}

/** The problems of a report as FILE:LINE: field: problem lines, with the count of those not listed. */
export function describeProblems(report: ImportReport): string[] {
  return [
    ...report.problems.map((problem) => formatProblem(report.file, problem)),
    ...(report.problem_count > report.problems.length ? [`… and ${report.problem_count - report.problems.length} more problems`] : []),
  ];
}

export function formatProblem(file: string, problem: LineProblem): string {
  return `${file}:${problem.line}: ${problem.field}: ${problem.problem}`;
}

/**
 * Imports one JSONL file in one transaction: interactions, interactions with embedded feedback, and
 * {"input","output"} gold pairs. A file with any invalid line writes nothing and throws an InputError listing
 * the lines, unless `skipInvalid`. Re-importing the same records is a no-op; the same id with different
 * content is an invalid line unless `update`. `-` reads standard input, named `<stdin>` in the report.
 */
export function importJsonlFile(store: FeedbackStore, source: string, options: ImportOptions = {}): ImportReport {
  const file = jsonlSourceName(source);
  const maxListed = options.maxProblemsListed ?? 20;
  const progress = options.progress ?? silentProgress;
  const now = (options.now ?? new Date()).toISOString();
  const report: ImportReport = {
    file,
    lines: 0,
    interactions: { inserted: 0, updated: 0, unchanged: 0 },
    feedback: { inserted: 0, updated: 0, unchanged: 0 },
    gold: 0,
    skipped_lines: 0,
    problems: [],
    problem_count: 0,
  };
  const addProblems = (problems: LineProblem[]): void => {
    report.problem_count += problems.length;
    for (const problem of problems) if (report.problems.length < maxListed) report.problems.push(problem);
  };

  let size = 0;
  try {
    if (source !== STDIN_FILE) size = fs.statSync(source).size;
  } catch {
    // readJsonl names the missing file.
  }
  /** The line each id was first seen on in this file, to name repeats. */
  const ledger = store.importLedger();

  const rejectFile = (): never => {
    throw new InputError(
      `${file}: ${report.problem_count} problem${report.problem_count === 1 ? "" : "s"} in ${report.skipped_lines} of ${report.lines} lines; nothing from this file was imported`,
      {
        details: describeProblems(report),
        hint: "fix these lines, or pass --skip-invalid to import the valid lines and list the rest",
      },
    );
  };

  progress.start(size, `import ${file}`);
  try {
    store.transaction(() => {
      const reading = readJsonl(source, {
        onBytes: (bytes) => progress.update(bytes),
        maxLineBytes: options.maxLineBytes,
        stdinFd: options.stdinFd,
      });
      for (const line of reading) {
        report.lines += 1;
        const problems: LineProblem[] = [];
        const planned = line.ok
          ? planLine(store, line.value, line.lineNumber, now, ledger, options.update ?? false, problems)
          : (problems.push({ line: line.lineNumber, field: line.field, problem: line.problem }), undefined);
        if (problems.length > 0 || planned === undefined) {
          report.skipped_lines += 1;
          addProblems(problems);
          continue;
        }
        apply(store, planned, report);
      }
      // Invalid lines abort the whole file: throwing rolls the transaction back.
      if (report.problem_count > 0 && !options.skipInvalid) rejectFile();
    });
  } finally {
    progress.stop();
  }
  return report;
}

type Action = "insert" | "update" | "unchanged";

interface PlannedLine {
  interaction: { record: Interaction; action: Action };
  feedback: Array<{ record: Feedback; action: Action }>;
}

/** Validates a line and decides what it writes, without writing: a line is applied whole or not at all. */
function planLine(
  store: FeedbackStore,
  value: unknown,
  lineNumber: number,
  now: string,
  ledger: ImportLedger,
  update: boolean,
  problems: LineProblem[],
): PlannedLine | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    problems.push({ line: lineNumber, field: "(line)", problem: `must be a JSON object, got ${jsonType(value)}` });
    return undefined;
  }
  const raw = value as Record<string, unknown>;
  const isGold = ("input" in raw || "output" in raw) && !("query" in raw) && !("response" in raw);

  let line: InteractionLine;
  let supplied: Set<string>;
  if (isGold) {
    const parsed = GoldPairLineSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, raw, lineNumber));
      return undefined;
    }
    const { input, output, ...rest } = parsed.data;
    line = { ...rest, query: input, response: output, model: GOLD_MODEL, origin: "gold" };
    supplied = new Set(["query", "response", "model", "origin", ...presentKeys(raw, ["created_at", "task", "context", "metadata"])]);
  } else {
    const parsed = InteractionLineSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, raw, lineNumber));
      return undefined;
    }
    line = parsed.data;
    supplied = new Set(presentKeys(raw, INTERACTION_FIELDS));
  }
  const content = {
    task: line.task ?? DEFAULT_TASK,
    query: line.query,
    context: line.context ?? [],
    response: line.response,
    model: line.model ?? DEFAULT_MODEL,
    origin: line.origin ?? ("model" as const),
  };
  const interaction: Interaction = {
    id: line.id ?? contentId(isGold ? "gold" : "ix", content),
    created_at: line.created_at ?? now,
    metadata: line.metadata ?? {},
    ...content,
  };
  const feedbackInputs: FeedbackInput[] = line.feedback == null ? [] : Array.isArray(line.feedback) ? line.feedback : [line.feedback];
  const feedbackRaw: unknown[] = Array.isArray(raw.feedback) ? raw.feedback : [raw.feedback];

  const interactionAction = planRecord(
    "id",
    interaction.id,
    store.getInteraction(interaction.id),
    interaction,
    supplied,
    lineNumber,
    { get: (id) => ledger.firstLine("interaction", id), set: (id, line) => ledger.record("interaction", id, line) },
    update,
    problems,
  );

  const feedback: PlannedLine["feedback"] = [];
  feedbackInputs.forEach((input, index) => {
    const field = Array.isArray(raw.feedback) ? `feedback[${index}]` : "feedback";
    if (input.interaction_id !== undefined && input.interaction_id !== interaction.id) {
      problems.push({
        line: lineNumber,
        field: `${field}.interaction_id`,
        problem: `is ${JSON.stringify(input.interaction_id)} but the line's interaction is ${JSON.stringify(interaction.id)}`,
      });
      return;
    }
    const reviewer = input.reviewer ?? DEFAULT_REVIEWER;
    const record: Feedback = {
      // Without an id, a review is identified by interaction, reviewer and position, so re-importing a file
      // is a no-op and a changed rating is a conflict rather than a second review.
      id: input.id ?? contentId("fb", { interaction: interaction.id, reviewer, index }),
      interaction_id: interaction.id,
      rating: input.rating,
      correct_points: input.correct_points ?? [],
      incorrect_points: input.incorrect_points ?? [],
      ideal_response: input.ideal_response ?? null,
      reviewer,
      created_at: input.created_at ?? now,
    };
    const rawReview = (feedbackRaw[index] ?? {}) as Record<string, unknown>;
    const existing = store.getFeedback(record.id);
    if (existing && existing.interaction_id !== record.interaction_id) {
      problems.push({
        line: lineNumber,
        field: `${field}.id`,
        problem: `${JSON.stringify(record.id)} already belongs to interaction ${JSON.stringify(existing.interaction_id)}`,
      });
      return;
    }
    const action = planRecord(
      `${field}.id`,
      record.id,
      existing,
      record,
      new Set(["interaction_id", ...presentKeys(rawReview, FEEDBACK_FIELDS)]),
      lineNumber,
      { get: (id) => ledger.firstLine("feedback", id), set: (id, line) => ledger.record("feedback", id, line) },
      update,
      problems,
    );
    if (action) feedback.push({ record: action.record, action: action.action });
  });

  if (!interactionAction || problems.length > 0) return undefined;
  return { interaction: interactionAction, feedback };
}

/**
 * Insert, unchanged, update (with --update) or conflict, comparing only the fields the line supplied: a
 * generated timestamp never conflicts with a stored one.
 */
function planRecord<T extends Interaction | Feedback>(
  idField: string,
  id: string,
  existing: T | undefined,
  incoming: T,
  supplied: Set<string>,
  lineNumber: number,
  seen: { get(id: string): number | undefined; set(id: string, line: number): void },
  update: boolean,
  problems: LineProblem[],
): { record: T; action: Action } | undefined {
  const firstLine = seen.get(id);
  if (firstLine === undefined) seen.set(id, lineNumber);
  if (!existing) return { record: incoming, action: "insert" };
  const differing = [...supplied].filter(
    (key) =>
      canonicalJson((existing as Record<string, unknown>)[key]) !== canonicalJson((incoming as Record<string, unknown>)[key]),
  );
  if (differing.length === 0) return { record: existing, action: "unchanged" };
  if (firstLine !== undefined) {
    problems.push({
      line: lineNumber,
      field: idField,
      problem: `${JSON.stringify(id)} repeats line ${firstLine} with different ${differing.join(", ")}`,
    });
    return undefined;
  }
  if (!update) {
    problems.push({
      line: lineNumber,
      field: idField,
      problem: `${JSON.stringify(id)} is already stored with different ${differing.join(", ")}; pass --update to replace it`,
    });
    return undefined;
  }
  const merged = { ...existing } as Record<string, unknown>;
  for (const key of differing) merged[key] = (incoming as Record<string, unknown>)[key];
  return { record: merged as T, action: "update" };
}

function apply(store: FeedbackStore, planned: PlannedLine, report: ImportReport): void {
  const { record, action } = planned.interaction;
  if (action === "insert") store.insertInteraction(record);
  else if (action === "update") store.updateInteraction(record);
  count(report.interactions, action);
  if (record.origin === "gold" && action === "insert") report.gold += 1;
  for (const review of planned.feedback) {
    if (review.action === "insert") store.insertFeedback(review.record);
    else if (review.action === "update") store.updateFeedback(review.record);
    count(report.feedback, review.action);
  }
}

function count(counts: RecordCounts, action: Action): void {
  if (action === "insert") counts.inserted += 1;
  else if (action === "update") counts.updated += 1;
  else counts.unchanged += 1;
}

/** A stable id from content, so a file without ids imports to the same ids every time. */
export function contentId(prefix: string, content: unknown): string {
  return `${prefix}_${crypto.createHash("sha256").update(canonicalJson(content)).digest("hex").slice(0, 20)}`;
}

function presentKeys(raw: Record<string, unknown>, keys: readonly string[]): string[] {
  return keys.filter((key) => raw[key] !== undefined);
}

/** zod issues as `field: problem (got …)` lines, with a suggestion for misspelt field names. */
function zodProblems(error: z.ZodError, raw: Record<string, unknown>, lineNumber: number): LineProblem[] {
  const problems: LineProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "invalid_union") {
      // The feedback field is an object or an array of objects: report against whichever shape was given.
      const branch = Array.isArray(valueAt(raw, issue.path)) ? issue.errors[1] : issue.errors[0];
      for (const inner of branch ?? []) {
        problems.push(...zodProblems({ issues: [{ ...inner, path: [...issue.path, ...inner.path] }] } as z.ZodError, raw, lineNumber));
      }
      continue;
    }
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const keyPath = [...issue.path, key];
        const known = knownKeys(raw, issue.path);
        const suggestion = closest(key, known);
        // A homoglyph ("qu\u0435ry", Cyrillic е) prints like the suggestion: say why they differ.
        const lookAlike = /[^\x20-\x7e]/.test(key) ? " this name has non-ASCII look-alike characters, shown as \\uXXXX" : "";
        problems.push({
          line: lineNumber,
          field: formatFieldPath(keyPath),
          problem: `unknown field${suggestion ? ` (did you mean "${suggestion}"?${lookAlike})` : ""}; put extra data under "metadata"`,
        });
      }
      continue;
    }
    const value = valueAt(raw, issue.path);
    problems.push({
      line: lineNumber,
      field: formatFieldPath(issue.path),
      problem: value === undefined ? "is required" : `${issue.message} (got ${preview(value)})`,
    });
  }
  return problems;
}

function knownKeys(raw: Record<string, unknown>, parentPath: readonly PropertyKey[]): string[] {
  if (parentPath.length === 0) {
    const isGold = ("input" in raw || "output" in raw) && !("query" in raw);
    return Object.keys((isGold ? GoldPairLineSchema : InteractionLineSchema).shape);
  }
  return Object.keys(FeedbackInputSchema.shape);
}

function valueAt(raw: unknown, keyPath: readonly PropertyKey[]): unknown {
  let node = raw;
  for (const key of keyPath) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** The known name within edit distance 2 of a misspelt one. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
