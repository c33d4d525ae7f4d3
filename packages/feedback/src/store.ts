import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { isAtsError, RunError } from "@ats-lora/core";
import { checkReadableSchema, migrate, newerSchemaError, SCHEMA_VERSION } from "./migrations.js";
import type { Feedback, Interaction } from "./schema.js";
import { aggregateFeedback, type AggregatedFeedback } from "./aggregate.js";
import { canonicalJson } from "./canonical.js";

export interface OpenStoreOptions {
  /** Open without creating or migrating; writes fail. */
  readonly?: boolean;
  /** How long a writer waits for another process's write lock, in ms. */
  busyTimeoutMs?: number;
}

/** Which interactions a listing holds: unreviewed (the model's answers no reviewer has rated yet), reviewed, or all. */
export type InteractionStatus = "unreviewed" | "reviewed" | "all";

export interface InteractionWithFeedback {
  interaction: Interaction;
  feedback: Feedback[];
}

export interface ImportLedger {
  firstLine(kind: "interaction" | "feedback", id: string): number | undefined;
  record(kind: "interaction" | "feedback", id: string, line: number): void;
}

export interface TaskStats {
  interactions: number;
  gold: number;
  feedback: number;
  reviewed: number;
  pending_review: number;
  mean_rating: number | null;
  rating_histogram: Record<"1" | "2" | "3" | "4" | "5", number>;
}

export interface FeedbackStats extends TaskStats {
  reviewers: number;
  multi_reviewed: number;
  with_ideal_response: number;
  /** Reviewed share of the model's interactions (gold examples need no review). */
  coverage: number;
  by_task: Record<string, TaskStats>;
  min_samples: { target: number; reviewed: number; progress: number; met: boolean };
}

interface InteractionRow {
  id: string;
  created_at: string;
  task: string;
  query: string;
  context: string;
  response: string;
  model: string;
  metadata: string;
  origin: "model" | "gold";
}

interface FeedbackRow {
  id: string;
  interaction_id: string;
  rating: number;
  correct_points: string;
  incorrect_points: string;
  ideal_response: string | null;
  reviewer: string;
  created_at: string;
}

/**
 * Interactions and reviewers' feedback in one SQLite file (feedback_db/feedback.sqlite). WAL journaling and
 * a busy timeout let several processes read and write at once; every multi-row write runs in one transaction,
 * so a crash leaves either all of it or none.
 */
export class FeedbackStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly statements;

  private constructor(file: string, db: Database.Database) {
    this.file = file;
    this.db = db;
    this.statements = {
      getInteraction: db.prepare<[string], InteractionRow>("SELECT * FROM interactions WHERE id = ?"),
      insertInteraction: db.prepare(
        `INSERT INTO interactions (id, created_at, task, query, context, response, model, metadata, origin, inserted_at)
         VALUES (@id, @created_at, @task, @query, @context, @response, @model, @metadata, @origin, @inserted_at)`,
      ),
      updateInteraction: db.prepare(
        `UPDATE interactions SET created_at = @created_at, task = @task, query = @query, context = @context,
           response = @response, model = @model, metadata = @metadata, origin = @origin WHERE id = @id`,
      ),
      getFeedback: db.prepare<[string], FeedbackRow>("SELECT * FROM feedback WHERE id = ?"),
      insertFeedback: db.prepare(
        `INSERT INTO feedback (id, interaction_id, rating, correct_points, incorrect_points, ideal_response, reviewer,
           created_at, inserted_at)
         VALUES (@id, @interaction_id, @rating, @correct_points, @incorrect_points, @ideal_response, @reviewer,
           @created_at, @inserted_at)`,
      ),
      updateFeedback: db.prepare(
        `UPDATE feedback SET interaction_id = @interaction_id, rating = @rating, correct_points = @correct_points,
           incorrect_points = @incorrect_points, ideal_response = @ideal_response, reviewer = @reviewer,
           created_at = @created_at WHERE id = @id`,
      ),
      feedbackFor: db.prepare<[string], FeedbackRow>(
        "SELECT * FROM feedback WHERE interaction_id = ? ORDER BY created_at, id",
      ),
    };
  }

  /**
   * Opens (creating and migrating unless readonly) the store at `file`. Every way this can fail is a RunError
   * that names the file or folder and says what to do: a folder or file that is not writable, a file that is
   * not an SQLite database, a schema newer than this code knows (refused for reading too: it could be misread).
   */
  static open(file: string, options: OpenStoreOptions = {}): FeedbackStore {
    const readonly = options.readonly ?? false;
    if (readonly && !fs.existsSync(file)) {
      throw new RunError(`no feedback store at ${file}`, {
        hint: "import interactions first: ats-lora collect import FILE.jsonl",
      });
    }
    if (!readonly) {
      createFolder(path.dirname(file));
      checkWritable(file);
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { readonly, fileMustExist: readonly });
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 30_000}`);
      if (readonly) {
        checkReadableSchema(db, file);
      } else {
        // Refuse a newer store before changing anything in it (the journal mode is written to its header).
        const version = db.pragma("user_version", { simple: true }) as number;
        if (version > SCHEMA_VERSION) throw newerSchemaError(file, version);
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = NORMAL");
      }
      db.pragma("foreign_keys = ON");
      if (!readonly) migrate(db, file);
      return new FeedbackStore(file, db);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // the error below is the one to report
      }
      throw openError(error, file);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `fn` in one write transaction (BEGIN IMMEDIATE: the write lock is taken up front, so concurrent
   * writers queue on the busy timeout instead of failing mid-way). Rolls back if `fn` throws.
   */
  transaction<T>(fn: () => T): T {
    try {
      this.db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      if ((error as { code?: string }).code === "SQLITE_BUSY") {
        throw new RunError(`the feedback store ${this.file} is busy: another process held its write lock past the busy timeout`, {
          cause: error,
          hint: "a large import holds the lock until it commits; try again when it finishes",
        });
      }
      throw error;
    }
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      if (sqliteCode(error).startsWith("SQLITE_READONLY")) throw openError(error, this.file);
      throw error;
    }
  }

  getInteraction(id: string): Interaction | undefined {
    const row = this.statements.getInteraction.get(id);
    return row && interactionFromRow(row, this.file);
  }

  insertInteraction(interaction: Interaction): void {
    this.statements.insertInteraction.run({ ...interactionToRow(interaction), inserted_at: new Date().toISOString() });
  }

  updateInteraction(interaction: Interaction): void {
    this.statements.updateInteraction.run(interactionToRow(interaction));
  }

  getFeedback(id: string): Feedback | undefined {
    const row = this.statements.getFeedback.get(id);
    return row && feedbackFromRow(row, this.file);
  }

  insertFeedback(feedback: Feedback): void {
    this.statements.insertFeedback.run({ ...feedbackToRow(feedback), inserted_at: new Date().toISOString() });
  }

  updateFeedback(feedback: Feedback): void {
    this.statements.updateFeedback.run(feedbackToRow(feedback));
  }

  /**
   * A fresh ledger of the line on which the file being imported first gave each id, so repeats within the
   * file can be named. It lives in a temporary SQLite table rather than in memory: importing a file of any
   * size keeps memory flat.
   */
  importLedger(): ImportLedger {
    this.db.exec(
      `CREATE TEMP TABLE IF NOT EXISTS import_ledger (
         kind TEXT NOT NULL, id TEXT NOT NULL, line INTEGER NOT NULL, PRIMARY KEY (kind, id)
       ) WITHOUT ROWID;
       DELETE FROM temp.import_ledger;`,
    );
    const get = this.db.prepare<[string, string], number>("SELECT line FROM temp.import_ledger WHERE kind = ? AND id = ?").pluck();
    const put = this.db.prepare("INSERT OR IGNORE INTO temp.import_ledger (kind, id, line) VALUES (?, ?, ?)");
    return {
      firstLine: (kind, id) => get.get(kind, id),
      record: (kind, id, line) => void put.run(kind, id, line),
    };
  }

  /** Every review of one interaction, oldest first. */
  feedbackFor(interactionId: string): Feedback[] {
    return this.statements.feedbackFor.all(interactionId).map((row) => feedbackFromRow(row, this.file));
  }

  /** The reviews of one interaction combined into one judgement (see aggregate.ts), or undefined if none. */
  aggregatedFeedback(interactionId: string): AggregatedFeedback | undefined {
    return aggregateFeedback(this.feedbackFor(interactionId));
  }

  /**
   * All interactions with their feedback, oldest first, streamed a page at a time (keyset pagination: memory
   * stays flat however large the store, and no statement is left open between pages).
   */
  *interactions(filter: { task?: string } = {}): Generator<InteractionWithFeedback> {
    const page = this.db.prepare<
      { task: string | null; created_at: string; id: string; limit: number },
      InteractionRow
    >(
      `SELECT * FROM interactions
       WHERE (@task IS NULL OR task = @task) AND (created_at, id) > (@created_at, @id)
       ORDER BY created_at, id LIMIT @limit`,
    );
    let after = { created_at: "", id: "" };
    for (;;) {
      const rows = page.all({ task: filter.task ?? null, ...after, limit: 500 });
      if (rows.length === 0) return;
      for (const row of rows) yield { interaction: interactionFromRow(row, this.file), feedback: this.feedbackFor(row.id) };
      const last = rows[rows.length - 1]!;
      after = { created_at: last.created_at, id: last.id };
    }
  }

  /** The model's interactions that no reviewer has rated yet, oldest first. */
  pendingReview(filter: { task?: string; limit?: number } = {}): Interaction[] {
    const rows = this.db
      .prepare<{ task: string | null; limit: number }, InteractionRow>(
        `SELECT i.* FROM interactions i
         WHERE i.origin = 'model' AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)
           AND (@task IS NULL OR i.task = @task)
         ORDER BY i.created_at, i.id LIMIT @limit`,
      )
      .all({ task: filter.task ?? null, limit: filter.limit ?? -1 });
    return rows.map((row) => interactionFromRow(row, this.file));
  }

  /**
   * Interactions with their feedback, oldest first: those with no review yet (the model's own answers), those
   * reviewed, or all; at most `limit`.
   */
  listInteractions(filter: { status: InteractionStatus; task?: string; limit?: number }): InteractionWithFeedback[] {
    const reviewed = "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)";
    const condition = { unreviewed: `i.origin = 'model' AND NOT ${reviewed}`, reviewed, all: "1" }[filter.status];
    const rows = this.db
      .prepare<{ task: string | null; limit: number }, InteractionRow>(
        `SELECT i.* FROM interactions i WHERE ${condition} AND (@task IS NULL OR i.task = @task) ORDER BY i.created_at, i.id LIMIT @limit`,
      )
      .all({ task: filter.task ?? null, limit: filter.limit ?? -1 });
    return rows.map((row) => ({ interaction: interactionFromRow(row, this.file), feedback: this.feedbackFor(row.id) }));
  }

  /**
   * What `reviewer` has left to review: the model's interactions without a review of theirs, those nobody has
   * reviewed first, then those others reviewed (a second opinion); oldest first within each. `pending` counts
   * all of them, the limit aside.
   */
  reviewerQueue(filter: { reviewer: string; task?: string; limit?: number }): { items: InteractionWithFeedback[]; pending: number } {
    const where = `i.origin = 'model' AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id AND f.reviewer = @reviewer)
      AND (@task IS NULL OR i.task = @task)`;
    const parameters = { reviewer: filter.reviewer, task: filter.task ?? null };
    const rows = this.db
      .prepare<typeof parameters & { limit: number }, InteractionRow>(
        `SELECT i.* FROM interactions i WHERE ${where}
         ORDER BY EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id), i.created_at, i.id LIMIT @limit`,
      )
      .all({ ...parameters, limit: filter.limit ?? -1 });
    const pending = this.db.prepare<typeof parameters, number>(`SELECT COUNT(*) FROM interactions i WHERE ${where}`).pluck().get(parameters)!;
    return { items: rows.map((row) => ({ interaction: interactionFromRow(row, this.file), feedback: this.feedbackFor(row.id) })), pending };
  }

  /** Deletes one review (a reviewer's undo); false when there is none with this id. */
  deleteFeedback(id: string): boolean {
    return this.db.prepare("DELETE FROM feedback WHERE id = ?").run(id).changes === 1;
  }

  /** The tasks the stored interactions are for, in name order. */
  taskNames(): string[] {
    return this.db.prepare<[], string>("SELECT DISTINCT task FROM interactions ORDER BY task").pluck().all();
  }

  /** How many of the model's interactions no reviewer has rated yet. */
  pendingReviewCount(filter: { task?: string } = {}): number {
    return this.db
      .prepare<{ task: string | null }, number>(
        `SELECT COUNT(*) FROM interactions i
         WHERE i.origin = 'model' AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)
           AND (@task IS NULL OR i.task = @task)`,
      )
      .pluck()
      .get({ task: filter.task ?? null })!;
  }

  /**
   * Per model that answered (origin "model"): how many interactions it has, and each reviewed one's rating (the
   * mean of its reviewers' ratings).
   */
  ratingsByModel(filter: { task?: string } = {}): Array<{ model: string; interactions: number; ratings: number[] }> {
    const counts = this.db
      .prepare<{ task: string | null }, { model: string; interactions: number }>(
        `SELECT model, COUNT(*) AS interactions FROM interactions WHERE origin = 'model' AND (@task IS NULL OR task = @task) GROUP BY model ORDER BY model`,
      )
      .all({ task: filter.task ?? null });
    const rated = this.db
      .prepare<{ task: string | null }, { model: string; rating: number }>(
        `SELECT i.model AS model, AVG(f.rating) AS rating FROM interactions i JOIN feedback f ON f.interaction_id = i.id
         WHERE i.origin = 'model' AND (@task IS NULL OR i.task = @task) GROUP BY i.id ORDER BY i.created_at, i.id`,
      )
      .all({ task: filter.task ?? null });
    return counts.map(({ model, interactions }) => ({ model, interactions, ratings: rated.filter((row) => row.model === model).map((row) => row.rating) }));
  }

  counts(): { interactions: number; feedback: number } {
    const row = this.db
      .prepare<[], { interactions: number; feedback: number }>(
        "SELECT (SELECT COUNT(*) FROM interactions) AS interactions, (SELECT COUNT(*) FROM feedback) AS feedback",
      )
      .get()!;
    return row;
  }

  /** Counts, the rating histogram, per-task figures and progress toward `minSamples` reviewed interactions. */
  stats(minSamples: number): FeedbackStats {
    const perTask = this.db
      .prepare<
        [],
        { task: string; interactions: number; gold: number; reviewed: number; pending: number }
      >(
        `SELECT task, COUNT(*) AS interactions,
           SUM(origin = 'gold') AS gold,
           SUM(EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)) AS reviewed,
           SUM(origin = 'model' AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)) AS pending
         FROM interactions i GROUP BY task ORDER BY task`,
      )
      .all();
    const ratings = this.db
      .prepare<[], { task: string; rating: number; n: number }>(
        `SELECT i.task, f.rating, COUNT(*) AS n FROM feedback f JOIN interactions i ON i.id = f.interaction_id
         GROUP BY i.task, f.rating`,
      )
      .all();
    const extra = this.db
      .prepare<[], { reviewers: number; multi: number; ideal: number; model: number }>(
        `SELECT (SELECT COUNT(DISTINCT reviewer) FROM feedback) AS reviewers,
           (SELECT COUNT(*) FROM (SELECT interaction_id FROM feedback GROUP BY interaction_id HAVING COUNT(*) > 1)) AS multi,
           (SELECT COUNT(*) FROM feedback WHERE ideal_response IS NOT NULL) AS ideal,
           (SELECT COUNT(*) FROM interactions WHERE origin = 'model') AS model`,
      )
      .get()!;

    const byTask: Record<string, TaskStats> = {};
    const total = emptyTaskStats();
    for (const row of perTask) {
      byTask[row.task] = {
        ...emptyTaskStats(),
        interactions: row.interactions,
        gold: row.gold,
        reviewed: row.reviewed,
        pending_review: row.pending,
      };
      total.interactions += row.interactions;
      total.gold += row.gold;
      total.reviewed += row.reviewed;
      total.pending_review += row.pending;
    }
    for (const row of ratings) {
      const task = byTask[row.task]!;
      const key = String(row.rating) as keyof TaskStats["rating_histogram"];
      task.rating_histogram[key] += row.n;
      task.feedback += row.n;
      total.rating_histogram[key] += row.n;
      total.feedback += row.n;
    }
    for (const task of [...Object.values(byTask), total]) task.mean_rating = meanOfHistogram(task.rating_histogram);

    return {
      ...total,
      reviewers: extra.reviewers,
      multi_reviewed: extra.multi,
      with_ideal_response: extra.ideal,
      coverage: extra.model === 0 ? 0 : round(total.reviewed / extra.model, 4),
      by_task: byTask,
      min_samples: {
        target: minSamples,
        reviewed: total.reviewed,
        progress: minSamples === 0 ? 1 : round(Math.min(1, total.reviewed / minSamples), 4),
        met: total.reviewed >= minSamples,
      },
    };
  }

  /** SQLite's own consistency check: "ok" when the file is sound. */
  integrityCheck(): string {
    const rows = this.db.pragma("integrity_check") as Array<{ integrity_check: string }>;
    return rows.map((row) => row.integrity_check).join("; ");
  }
}

/** Runs `work` on the store at `file`, opened for it and closed afterwards, also when `work` throws. */
export function withFeedbackStore<T>(file: string, options: OpenStoreOptions, work: (store: FeedbackStore) => T): T {
  const store = FeedbackStore.open(file, options);
  try {
    return work(store);
  } finally {
    store.close();
  }
}

function emptyTaskStats(): TaskStats {
  return {
    interactions: 0,
    gold: 0,
    feedback: 0,
    reviewed: 0,
    pending_review: 0,
    mean_rating: null,
    rating_histogram: { "1": 0, "2": 0, "3": 0, "4": 0, "5": 0 },
  };
}

function meanOfHistogram(histogram: TaskStats["rating_histogram"]): number | null {
  let n = 0;
  let sum = 0;
  for (const [rating, count] of Object.entries(histogram)) {
    n += count;
    sum += Number(rating) * count;
  }
  return n === 0 ? null : round(sum / n, 3);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function interactionToRow(interaction: Interaction): InteractionRow {
  return {
    id: interaction.id,
    created_at: interaction.created_at,
    task: interaction.task,
    query: interaction.query,
    context: JSON.stringify(interaction.context),
    response: interaction.response,
    model: interaction.model,
    metadata: canonicalJson(interaction.metadata),
    origin: interaction.origin,
  };
}

function interactionFromRow(row: InteractionRow, file: string): Interaction {
  const column = jsonColumn(file, "interactions", row.id);
  return {
    id: row.id,
    created_at: row.created_at,
    task: row.task,
    query: row.query,
    context: column("context", row.context, isStringArray, "a JSON array of strings"),
    response: row.response,
    model: row.model,
    metadata: column("metadata", row.metadata, isPlainObject, "a JSON object"),
    origin: row.origin,
  };
}

function feedbackToRow(feedback: Feedback): FeedbackRow {
  return {
    id: feedback.id,
    interaction_id: feedback.interaction_id,
    rating: feedback.rating,
    correct_points: JSON.stringify(feedback.correct_points),
    incorrect_points: JSON.stringify(feedback.incorrect_points),
    ideal_response: feedback.ideal_response,
    reviewer: feedback.reviewer,
    created_at: feedback.created_at,
  };
}

function feedbackFromRow(row: FeedbackRow, file: string): Feedback {
  const column = jsonColumn(file, "feedback", row.id);
  return {
    id: row.id,
    interaction_id: row.interaction_id,
    rating: row.rating,
    correct_points: column("correct_points", row.correct_points, isStringArray, "a JSON array of strings"),
    incorrect_points: column("incorrect_points", row.incorrect_points, isStringArray, "a JSON array of strings"),
    ideal_response: row.ideal_response,
    reviewer: row.reviewer,
    created_at: row.created_at,
  };
}

/**
 * Reads the JSON stored in one column of one row; a value that does not parse, or is not of the stored shape
 * (the row was changed outside ats-lora), is an error naming the store, the table, the row and the column.
 */
function jsonColumn(file: string, table: string, id: string) {
  return <T>(column: string, text: string, valid: (value: unknown) => value is T, shape: string): T => {
    const where = `${file}: table ${table}, row id ${JSON.stringify(id)}, column ${column}`;
    const hint = `the row was changed outside ats-lora: correct the value with sqlite3 (UPDATE ${table} SET ${column} = '…' WHERE id = '…'), delete the row, or restore the store from a backup or an export`;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new RunError(`${where}: not valid JSON (${(error as Error).message})`, { cause: error, hint });
    }
    if (!valid(value)) throw new RunError(`${where}: not ${shape}`, { hint });
    return value;
  };
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const NOT_WRITABLE = new Set(["EACCES", "EPERM", "EROFS"]);

function sqliteCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** Creates the store's folder, or says which existing folder above it is not writable. */
function createFolder(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    let existing = path.dirname(dir);
    while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
    const code = sqliteCode(error);
    if (NOT_WRITABLE.has(code)) {
      throw new RunError(`cannot create the folder ${dir} for the feedback store: ${existing} is not writable`, {
        cause: error,
        hint: `make it writable (chmod u+w ${existing}), or pass --workdir a folder you can write to`,
      });
    }
    throw new RunError(`cannot create the folder ${dir} for the feedback store: ${(error as Error).message}`, {
      cause: error,
      hint: code === "ENOTDIR" || code === "EEXIST" ? "a file stands where a folder should be: move it away" : undefined,
    });
  }
}

/**
 * Fails early when the store file exists but may not be written: SQLite would open it read-only without a
 * word and fail only at the first write. open(2) checks the effective user, as SQLite does.
 */
function checkWritable(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, "r+");
  } catch (error) {
    const code = sqliteCode(error);
    if (NOT_WRITABLE.has(code)) throw notWritable(file, error);
    if (code === "EISDIR") throw new RunError(`${file} is a folder, not a feedback store`, { hint: "move it away, or pass --workdir the right folder" });
    return; // missing: SQLite creates it
  }
  fs.closeSync(fd);
}

function notWritable(file: string, cause: unknown): RunError {
  return new RunError(`the feedback store ${file} is not writable`, {
    cause,
    hint: `make it writable (chmod u+w ${file}); commands that only read the store (collect stats, collect export, build-db) work as it is`,
  });
}

/** Turns what opening (or first writing to) a store threw into an error that names the file and says what to do. */
function openError(error: unknown, file: string): Error {
  if (isAtsError(error)) return error;
  const dir = path.dirname(file);
  const message = (error as Error).message;
  const code = sqliteCode(error);
  if (code === "SQLITE_NOTADB") {
    return new RunError(`${file} is not an SQLite database, so not a feedback store${guessContent(file)}`, {
      cause: error,
      hint: `move it away (mv ${file} ${file}.broken) to start a new store, or put back a backup; a JSONL export of the store can be imported into a new one with ats-lora collect import`,
    });
  }
  if (code === "SQLITE_CORRUPT") {
    return new RunError(`the feedback store ${file} is corrupt (${message})`, {
      cause: error,
      hint: `put back a backup, or try: sqlite3 ${file} .recover | sqlite3 ${file}.recovered`,
    });
  }
  const folderNotWritable = new RunError(
    `cannot open the feedback store ${file}: the folder ${dir} is not writable, and SQLite keeps the store's -wal and -shm files there (even to read it)`,
    { cause: error, hint: `make the folder writable (chmod u+w ${dir}), or copy the workdir somewhere writable and pass --workdir` },
  );
  if (code === "SQLITE_READONLY_DIRECTORY") return folderNotWritable;
  if (code === "SQLITE_CANTOPEN" && !fs.existsSync(file)) {
    return new RunError(`cannot create the feedback store ${file}: the folder ${dir} is not writable`, {
      cause: error,
      hint: `make it writable (chmod u+w ${dir}), or pass --workdir a folder you can write to`,
    });
  }
  if (code.startsWith("SQLITE_READONLY")) {
    try {
      fs.closeSync(fs.openSync(file, "r+"));
    } catch (cause) {
      if (NOT_WRITABLE.has(sqliteCode(cause))) return notWritable(file, error);
    }
    return folderNotWritable;
  }
  if (code === "SQLITE_BUSY") {
    return new RunError(`the feedback store ${file} is busy: another process held its write lock past the busy timeout`, {
      cause: error,
      hint: "a large import holds the lock until it commits; try again when it finishes",
    });
  }
  return new RunError(`cannot open the feedback store ${file}: ${message}`, { cause: error });
}

/** What a file that is not a database seems to be, from its first bytes: a clue to what overwrote it. */
function guessContent(file: string): string {
  try {
    const fd = fs.openSync(file, "r");
    const head = Buffer.alloc(64);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    const text = head.subarray(0, n).toString("utf8").trimStart();
    if (text.startsWith("{")) return " (it looks like JSONL: was an export written onto it?)";
  } catch {
    // no clue
  }
  return "";
}
