import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { aggregateFeedback } from "./aggregate.js";
import { exportJsonl } from "./export.js";
import { importJsonlFile } from "./import.js";
import { RunError } from "@ats-lora/core";
import { SCHEMA_VERSION } from "./migrations.js";
import type { Feedback } from "./schema.js";
import { FeedbackStore } from "./store.js";
import { interactionLine, tempDir, tempStore, writeJsonl } from "./test-support.js";
import fs from "node:fs";

const review = (overrides: Partial<Feedback>): Feedback => ({
  id: "f",
  interaction_id: "ix",
  rating: 3,
  correct_points: [],
  incorrect_points: [],
  ideal_response: null,
  reviewer: "r",
  created_at: "2026-09-01T00:00:00.000Z",
  ...overrides,
});

describe("FeedbackStore", () => {
  it("creates the schema with WAL journaling, a busy timeout and the current schema version", () => {
    const dir = tempDir();
    const file = path.join(dir, "feedback_db", "feedback.sqlite");
    FeedbackStore.open(file).close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()).toEqual([
      "feedback",
      "interactions",
    ]);
    db.close();
    // Opening again migrates nothing and keeps the data.
    const store = FeedbackStore.open(file);
    expect(store.integrityCheck()).toBe("ok");
    store.close();
  });

  it("refuses a database from a newer version", () => {
    const file = path.join(tempDir(), "feedback.sqlite");
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => FeedbackStore.open(file)).toThrow(/was made by a newer ats-lora/);
  });

  it("refuses to read a real store made by a newer ats-lora too (readonly: stats, export, build-db), naming the file and both versions", () => {
    const store = tempStore();
    const file = store.file;
    importJsonlFile(store, writeJsonl(tempDir(), "in.jsonl", [interactionLine()]));
    store.close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const expected = `${file} was made by a newer ats-lora (schema version ${SCHEMA_VERSION + 1}; this ats-lora knows up to ${SCHEMA_VERSION}): upgrade ats-lora to use it`;
    for (const options of [{ readonly: true }, {}]) {
      let error: unknown;
      try {
        FeedbackStore.open(file, options).close();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(RunError);
      expect((error as RunError).message).toBe(expected);
    }
    // Nothing was changed: the newer version is still there.
    const after = new Database(file, { readonly: true });
    expect(after.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION + 1);
    after.close();
  });

  it("names the path and says what to do when the store is not an SQLite database (SQLITE_NOTADB)", () => {
    const dir = tempDir();
    const file = path.join(dir, "feedback_db", "feedback.sqlite");
    FeedbackStore.open(file).close();
    fs.writeFileSync(file, JSON.stringify(interactionLine()) + "\n");
    for (const options of [{ readonly: true }, {}]) {
      let error: unknown;
      try {
        FeedbackStore.open(file, options).close();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(RunError);
      expect((error as RunError).message).toBe(`${file} is not an SQLite database, so not a feedback store (it looks like JSONL: was an export written onto it?)`);
      expect((error as RunError).hint).toContain(`mv ${file} ${file}.broken`);
    }
  });

  it("refuses to read an SQLite file without the feedback schema", () => {
    const file = path.join(tempDir(), "empty.sqlite");
    new Database(file).close();
    expect(() => FeedbackStore.open(file, { readonly: true })).toThrow(`${file} has no feedback-store schema (user_version 0)`);
  });

  it("says the store is busy when another connection holds the write lock past the busy timeout", () => {
    const file = path.join(tempDir(), "feedback.sqlite");
    const waiter = FeedbackStore.open(file, { busyTimeoutMs: 50 });
    const blocker = new Database(file);
    blocker.exec("BEGIN IMMEDIATE");
    expect(() => waiter.transaction(() => 1)).toThrow(/is busy: another process held its write lock/);
    blocker.exec("ROLLBACK");
    expect(waiter.transaction(() => 2)).toBe(2);
    blocker.close();
    waiter.close();
  });

  it("refuses to read a store that does not exist", () => {
    expect(() => FeedbackStore.open(path.join(tempDir(), "none.sqlite"), { readonly: true })).toThrow(/no feedback store/);
  });

  it("counts stats per task, with the rating histogram and progress toward the minimum", () => {
    const store = tempStore();
    const file = writeJsonl(tempDir(), "s.jsonl", [
      interactionLine({ id: "a", task: "match_score", feedback: [{ rating: 2, reviewer: "x" }, { rating: 4, reviewer: "y" }] }),
      interactionLine({ id: "b", task: "match_score", feedback: { rating: 5, reviewer: "x", ideal_response: null } }),
      interactionLine({ id: "c", task: "resume_parse", feedback: undefined }),
      { input: "i", output: "o", task: "resume_parse" },
    ]);
    importJsonlFile(store, file);
    const stats = store.stats(4);
    expect(stats).toMatchObject({
      interactions: 4,
      gold: 1,
      feedback: 3,
      reviewed: 2,
      pending_review: 1,
      reviewers: 2,
      multi_reviewed: 1,
      with_ideal_response: 0,
      mean_rating: 3.667,
      rating_histogram: { "1": 0, "2": 1, "3": 0, "4": 1, "5": 1 },
      coverage: 0.6667,
      min_samples: { target: 4, reviewed: 2, progress: 0.5, met: false },
    });
    expect(stats.by_task.match_score).toMatchObject({ interactions: 2, feedback: 3, reviewed: 2, pending_review: 0 });
    expect(stats.by_task.resume_parse).toMatchObject({ interactions: 2, gold: 1, feedback: 0, pending_review: 1, mean_rating: null });
    expect(store.pendingReview().map((item) => item.id)).toEqual(["c"]);
  });
});

describe("aggregateFeedback", () => {
  it("averages ratings, unions points and keeps the latest ideal response", () => {
    const aggregated = aggregateFeedback([
      review({ id: "2", rating: 4, reviewer: "b", created_at: "2026-09-02T00:00:00.000Z", correct_points: ["Go", "EKS"], ideal_response: "later" }),
      review({ id: "1", rating: 2, reviewer: "a", correct_points: ["go "], incorrect_points: ["score too low"], ideal_response: "earlier" }),
      review({ id: "3", rating: 3, reviewer: "a", created_at: "2026-09-03T00:00:00.000Z", ideal_response: null }),
    ]);
    expect(aggregated).toEqual({
      reviews: 3,
      reviewers: ["a", "b"],
      rating: 3,
      rating_min: 2,
      rating_max: 4,
      disagreement: 2,
      correct_points: ["go ", "EKS"],
      incorrect_points: ["score too low"],
      ideal_response: "later",
    });
    expect(aggregateFeedback([])).toBeUndefined();
  });
});

describe("export", () => {
  it("round-trips: import(export(db)) reproduces the database byte for byte", () => {
    const dir = tempDir();
    const store = tempStore();
    importJsonlFile(
      store,
      writeJsonl(dir, "in.jsonl", [
        interactionLine({ metadata: { z: 1, a: { y: [1, 2], b: null } } }),
        interactionLine({ id: "two", feedback: [{ rating: 1, reviewer: "a" }, { rating: 2, reviewer: "b" }] }),
        { query: "no feedback", response: "r", created_at: "2026-01-01T00:00:00+05:30" },
        { input: "gold in", output: "gold out", task: "resume_parse" },
      ]),
    );
    const first = path.join(dir, "first.jsonl");
    expect(exportJsonl(store, first)).toMatchObject({ interactions: 4, feedback: 3 });

    const copy = FeedbackStore.open(path.join(dir, "copy", "feedback.sqlite"));
    importJsonlFile(copy, first);
    const second = path.join(dir, "second.jsonl");
    exportJsonl(copy, second);
    expect(fs.readFileSync(second, "utf8")).toBe(fs.readFileSync(first, "utf8"));
    expect([...copy.interactions()]).toEqual([...store.interactions()]);

    const lines = fs.readFileSync(first, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.find((line) => line.id === "two").feedback).toHaveLength(2);
    expect(lines.find((line) => line.id === "ix-1").feedback.rating).toBe(2);
    expect(lines.find((line) => line.origin === "gold")).toMatchObject({ query: "gold in", response: "gold out" });
  });

  it("masks e-mail addresses and phone numbers in every text field with --redact", () => {
    const dir = tempDir();
    const store = tempStore();
    importJsonlFile(
      store,
      writeJsonl(dir, "in.jsonl", [
        interactionLine({
          query: "Parse the resume of ana@example.com",
          response: '{"email": "ana@example.com", "phone": "+1 415 555 0142"}',
          metadata: { recruiter: "bob@example.org" },
          feedback: { rating: 2, correct_points: ["found ana@example.com"], ideal_response: '{"phone": "(312) 555-0199"}' },
        }),
      ]),
    );
    const out = path.join(dir, "redacted.jsonl");
    exportJsonl(store, out, { redact: true });
    const text = fs.readFileSync(out, "utf8");
    expect(text).not.toMatch(/@example\.(com|org)|555[ -]01/);
    const line = JSON.parse(text);
    expect(line.query).toBe("Parse the resume of [EMAIL]");
    expect(line.context[1]).toBe("Resume: Ana Ruiz, [EMAIL], [PHONE]");
    expect(line.response).toBe('{"email": "[EMAIL]", "phone": "[PHONE]"}');
    expect(line.metadata.recruiter).toBe("[EMAIL]");
    expect(line.feedback.correct_points).toEqual(["found [EMAIL]"]);
    expect(line.feedback.ideal_response).toBe('{"phone": "[PHONE]"}');
    // The store itself is untouched.
    expect(store.getInteraction("ix-1")!.query).toContain("ana@example.com");
  });
});
