import type Database from "better-sqlite3";
import { RunError } from "@ats-lora/core";

/**
 * Versioned schema changes, applied in order; PRAGMA user_version holds the last one applied.
 * Append new migrations; never edit one that has shipped.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: "interactions and feedback",
    sql: `
      CREATE TABLE interactions (
        id          TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL,
        task        TEXT NOT NULL,
        query       TEXT NOT NULL,
        context     TEXT NOT NULL,              -- JSON array of strings
        response    TEXT NOT NULL,
        model       TEXT NOT NULL,
        metadata    TEXT NOT NULL,              -- JSON object, keys sorted
        origin      TEXT NOT NULL CHECK (origin IN ('model', 'gold')),
        inserted_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX interactions_by_time ON interactions (created_at, id);
      CREATE INDEX interactions_by_task ON interactions (task);

      CREATE TABLE feedback (
        id               TEXT PRIMARY KEY,
        interaction_id   TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
        rating           INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        correct_points   TEXT NOT NULL,         -- JSON array of strings
        incorrect_points TEXT NOT NULL,         -- JSON array of strings
        ideal_response   TEXT,
        reviewer         TEXT NOT NULL,
        created_at       TEXT NOT NULL,
        inserted_at      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX feedback_by_interaction ON feedback (interaction_id, created_at, id);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The error for a store whose schema is newer than this code knows: reading it could misread it. */
export function newerSchemaError(file: string, version: number): RunError {
  return new RunError(
    `${file} was made by a newer ats-lora (schema version ${version}; this ats-lora knows up to ${SCHEMA_VERSION}): upgrade ats-lora to use it`,
    { hint: "install the ats-lora version that wrote the store (or a later one); this version neither reads nor changes it" },
  );
}

/**
 * Checks, without writing, that a store opened for reading has the schema this code reads: not newer (it
 * would be misread), not empty, not older (only a writer migrates).
 */
export function checkReadableSchema(db: Database.Database, file: string): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > SCHEMA_VERSION) throw newerSchemaError(file, version);
  if (version === 0) {
    throw new RunError(`${file} has no feedback-store schema (user_version 0): it is not a feedback store, or nothing was ever written to it`, {
      hint: "import interactions first (ats-lora collect import FILE.jsonl), or point --workdir at the right folder",
    });
  }
  if (version < SCHEMA_VERSION) {
    throw new RunError(`${file} has schema version ${version}, older than this ats-lora's (${SCHEMA_VERSION})`, {
      hint: "any command that writes to the store upgrades it, e.g. ats-lora collect import FILE.jsonl",
    });
  }
}

/** Brings the database to SCHEMA_VERSION; returns the versions applied. Safe when several processes race. */
export function migrate(db: Database.Database, file: string): number[] {
  const applied: number[] = [];
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current === SCHEMA_VERSION) return applied;
  if (current > SCHEMA_VERSION) throw newerSchemaError(file, current);
  // IMMEDIATE takes the write lock first, so a second process waits and then sees the new version.
  db.exec("BEGIN IMMEDIATE");
  try {
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw newerSchemaError(file, version);
    for (const migration of MIGRATIONS) {
      if (migration.version <= version) continue;
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
      applied.push(migration.version);
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
  return applied;
}
