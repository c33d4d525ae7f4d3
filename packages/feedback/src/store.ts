import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { RunError } from "@ats-lora/core";
import { migrate } from "./migrations.js";
import type { Feedback, Interaction } from "./schema.js";
import { aggregateFeedback, type AggregatedFeedback } from "./aggregate.js";
import { canonicalJson } from "./canonical.js";

export interface OpenStoreOptions {
  /** Open without creating or migrating; writes fail. */
  readonly?: boolean;
  /** How long a writer waits for another process's write lock, in ms. */
  busyTimeoutMs?: number;
}

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

  /** Opens (creating and migrating unless readonly) the store at `file`. */
  static open(file: string, options: OpenStoreOptions = {}): FeedbackStore {
    const readonly = options.readonly ?? false;
    if (readonly && !fs.existsSync(file)) {
      throw new RunError(`no feedback store at ${file}`, {
        hint: "import interactions first: ats-lora collect import FILE.jsonl",
      });
    }
    if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(file, { readonly, fileMustExist: readonly });
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 30_000}`);
      if (!readonly) {
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = NORMAL");
      }
      db.pragma("foreign_keys = ON");
      if (!readonly) migrate(db, file);
    } catch (error) {
      throw new RunError(`cannot open the feedback store ${file}: ${(error as Error).message}`, { cause: error });
    }
    return new FeedbackStore(file, db);
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
      throw error;
    }
  }

  getInteraction(id: string): Interaction | undefined {
    const row = this.statements.getInteraction.get(id);
    return row && interactionFromRow(row);
  }

  insertInteraction(interaction: Interaction): void {
    this.statements.insertInteraction.run({ ...interactionToRow(interaction), inserted_at: new Date().toISOString() });
  }

  updateInteraction(interaction: Interaction): void {
    this.statements.updateInteraction.run(interactionToRow(interaction));
  }

  getFeedback(id: string): Feedback | undefined {
    const row = this.statements.getFeedback.get(id);
    return row && feedbackFromRow(row);
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
    return this.statements.feedbackFor.all(interactionId).map(feedbackFromRow);
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
      for (const row of rows) yield { interaction: interactionFromRow(row), feedback: this.feedbackFor(row.id) };
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
    return rows.map(interactionFromRow);
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

function interactionFromRow(row: InteractionRow): Interaction {
  return {
    id: row.id,
    created_at: row.created_at,
    task: row.task,
    query: row.query,
    context: JSON.parse(row.context) as string[],
    response: row.response,
    model: row.model,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
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

function feedbackFromRow(row: FeedbackRow): Feedback {
  return {
    id: row.id,
    interaction_id: row.interaction_id,
    rating: row.rating,
    correct_points: JSON.parse(row.correct_points) as string[],
    incorrect_points: JSON.parse(row.incorrect_points) as string[],
    ideal_response: row.ideal_response,
    reviewer: row.reviewer,
    created_at: row.created_at,
  };
}
