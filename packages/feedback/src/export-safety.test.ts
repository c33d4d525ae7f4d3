import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { ExitCode, InputError, RunError } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { exportJsonl } from "./export.js";
import { importJsonlFile } from "./import.js";
import { FeedbackStore } from "./store.js";
import { interactionLine, tempDir, writeJsonl } from "./test-support.js";

/** A workdir-shaped folder with a store holding two interactions, three reviews. */
function filledStore(): { dir: string; store: FeedbackStore } {
  const dir = tempDir();
  const store = FeedbackStore.open(path.join(dir, "feedback_db", "feedback.sqlite"));
  importJsonlFile(
    store,
    writeJsonl(dir, "in.jsonl", [
      interactionLine(),
      interactionLine({ id: "two", feedback: [{ rating: 1, reviewer: "a" }, { rating: 4, reviewer: "b" }] }),
    ]),
  );
  return { dir, store };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

describe("export: what it refuses to overwrite", () => {
  it("refuses to write onto the live store (exit 2), and the store stays readable", () => {
    const { store } = filledStore();
    const before = fs.readFileSync(store.file);
    const error = thrown(() => exportJsonl(store, store.file));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(ExitCode.badInput);
    expect(error.message).toContain(store.file);
    expect(error.message).toMatch(/the feedback store itself/);
    expect(fs.readFileSync(store.file).equals(before)).toBe(true);
    expect(fs.readdirSync(path.dirname(store.file)).filter((name) => name.endsWith(".partial"))).toEqual([]);
    store.close();
    const reopened = FeedbackStore.open(store.file, { readonly: true });
    expect(reopened.counts()).toEqual({ interactions: 2, feedback: 3 });
    reopened.close();
  });

  it("refuses the store through another spelling of its path and through a symbolic link", () => {
    const { dir, store } = filledStore();
    const relative = path.relative(process.cwd(), store.file);
    expect(() => exportJsonl(store, relative)).toThrow(/the feedback store itself/);
    const dotted = path.join(dir, "feedback_db", ".", "..", "feedback_db", "feedback.sqlite");
    expect(() => exportJsonl(store, dotted)).toThrow(/the feedback store itself/);
    const link = path.join(dir, "link.jsonl");
    fs.symlinkSync(store.file, link);
    expect(() => exportJsonl(store, link)).toThrow(/the feedback store itself/);
    store.close();
  });

  it("refuses the store's -wal, -shm and -journal files, present or not", () => {
    const { store } = filledStore();
    for (const suffix of ["-wal", "-shm", "-journal"]) {
      const error = thrown(() => exportJsonl(store, `${store.file}${suffix}`));
      expect(error).toBeInstanceOf(InputError);
      expect(error.message).toMatch(/the feedback store's own file/);
    }
    expect(store.integrityCheck()).toBe("ok");
    store.close();
  });

  it("refuses any SQLite database, leaving it as it was", () => {
    const { dir, store } = filledStore();
    const other = path.join(dir, "vector_store", "chunks.sqlite");
    fs.mkdirSync(path.dirname(other));
    const db = new Database(other);
    db.exec("CREATE TABLE chunks (id INTEGER PRIMARY KEY, text TEXT)");
    db.close();
    const before = fs.readFileSync(other);
    const error = thrown(() => exportJsonl(store, other));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`${other} is an SQLite database, not a JSONL export: refusing to overwrite it`);
    expect(fs.readFileSync(other).equals(before)).toBe(true);
    store.close();
  });

  it("refuses an existing file that is not a previous export, and a folder", () => {
    const { dir, store } = filledStore();
    const notes = path.join(dir, "notes.txt");
    fs.writeFileSync(notes, "interview notes, not JSONL\n");
    expect(() => exportJsonl(store, notes)).toThrow(InputError);
    expect(() => exportJsonl(store, notes)).toThrow(/is not a JSONL export of interactions: refusing to overwrite it/);
    expect(fs.readFileSync(notes, "utf8")).toBe("interview notes, not JSONL\n");
    const pairs = writeJsonl(dir, "gold.jsonl", [{ input: "i", output: "o" }]);
    expect(() => exportJsonl(store, pairs)).toThrow(/not a JSONL export/);
    expect(() => exportJsonl(store, dir)).toThrow(/is a folder/);
    store.close();
  });

  it("overwrites a previous export and an empty file", () => {
    const { dir, store } = filledStore();
    const out = path.join(dir, "export.jsonl");
    exportJsonl(store, out);
    const first = fs.readFileSync(out, "utf8");
    expect(exportJsonl(store, out)).toMatchObject({ interactions: 2, feedback: 3 });
    expect(fs.readFileSync(out, "utf8")).toBe(first);
    const empty = path.join(dir, "empty.jsonl");
    fs.writeFileSync(empty, "");
    expect(exportJsonl(store, empty)).toMatchObject({ interactions: 2 });
    store.close();
  });
});

describe("export: leftovers of a killed export", () => {
  it("removes OUT.PID.partial files whose process is gone, keeps a running one's, and says so", () => {
    const { dir, store } = filledStore();
    const out = path.join(dir, "export.jsonl");
    // A process that has exited: its pid is free.
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    const stale = `${out}.${gone}.partial`;
    const live = `${out}.${process.ppid}.partial`;
    const unrelated = path.join(dir, "other.jsonl.1.partial");
    for (const file of [stale, live, unrelated]) fs.writeFileSync(file, "{half a line");
    const report = exportJsonl(store, out);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    expect(fs.existsSync(unrelated)).toBe(true);
    expect(report.notes).toEqual([`removed ${stale}, left by an export (pid ${gone}) that did not finish`]);
    expect(fs.readFileSync(out, "utf8").trim().split("\n")).toHaveLength(2);
    store.close();
  });
});

describe("export: a malformed row", () => {
  it("names the store, the table, the row and the column of a stored JSON value that does not parse", () => {
    const { dir, store } = filledStore();
    const raw = new Database(store.file);
    raw.prepare("UPDATE interactions SET context = ? WHERE id = ?").run('["Resume: Ana', "two");
    raw.close();
    const error = thrown(() => exportJsonl(store, path.join(dir, "out.jsonl")));
    expect(error).toBeInstanceOf(RunError);
    expect(error.message).toContain(store.file);
    expect(error.message).toMatch(/table interactions, row id "two", column context: not valid JSON/);
    expect((error as RunError).hint).toMatch(/sqlite3/);
    expect(fs.readdirSync(dir).filter((name) => name.includes("out.jsonl"))).toEqual([]);
    store.close();
  });

  it("names the feedback row too, and a JSON value of the wrong type", () => {
    const { dir, store } = filledStore();
    const raw = new Database(store.file);
    const id = raw.prepare("SELECT id FROM feedback WHERE interaction_id = 'two' ORDER BY id LIMIT 1").pluck().get() as string;
    raw.prepare("UPDATE feedback SET correct_points = '{\"not\": \"a list\"}' WHERE id = ?").run(id);
    raw.close();
    expect(() => exportJsonl(store, path.join(dir, "out.jsonl"))).toThrow(
      `${store.file}: table feedback, row id "${id}", column correct_points: not a JSON array of strings`,
    );
    store.close();
  });
});

describe("export --redact", () => {
  it("keeps record ids and timestamps, so the export still imports, and masks the reviewer's address", () => {
    const dir = tempDir();
    const store = FeedbackStore.open(path.join(dir, "feedback_db", "feedback.sqlite"));
    importJsonlFile(
      store,
      writeJsonl(dir, "in.jsonl", [
        interactionLine({ id: "4155550142", feedback: { rating: 3, reviewer: "p.sharma@acme.example.com" } }),
        interactionLine({ id: "9876543210", metadata: { "ana.ruiz@example.com": "candidate" } }),
      ]),
    );
    const out = path.join(dir, "redacted.jsonl");
    exportJsonl(store, out, { redact: true });
    const lines = fs.readFileSync(out, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.map((line) => line.id).sort()).toEqual(["4155550142", "9876543210"]);
    const first = lines.find((line) => line.id === "4155550142");
    expect(first.created_at).toBe("2026-09-14T10:22:05.000Z");
    expect(first.feedback.reviewer).toBe("[EMAIL]");
    expect(first.feedback.id).toMatch(/\S/);
    expect(lines.find((line) => line.id === "9876543210").metadata).toEqual({ "[EMAIL]": "candidate" });
    const copy = FeedbackStore.open(path.join(dir, "copy", "feedback.sqlite"));
    importJsonlFile(copy, out);
    expect(copy.counts()).toEqual({ interactions: 2, feedback: 2 });
    copy.close();
    store.close();
  });
});
