import fs from "node:fs";
import path from "node:path";
import { RunError } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { exportJsonl } from "./export.js";
import { importJsonlFile } from "./import.js";
import { FeedbackStore } from "./store.js";
import { interactionLine, tempDir, writeJsonl } from "./test-support.js";

/**
 * Runs `fn` as a user whom permission bits apply to. Root ignores them, and CI runs as root: there the
 * effective uid becomes `nobody` for the (synchronous) call and root again after it. Vitest runs each test
 * file in a process of its own, so nothing else sees the change.
 */
function unprivileged<T>(fn: () => T): T {
  if (process.geteuid?.() !== 0) return fn();
  process.seteuid!(65534);
  try {
    return fn();
  } finally {
    process.seteuid!(0);
  }
}

function failure(fn: () => unknown): RunError {
  try {
    unprivileged(fn);
  } catch (error) {
    expect(error).toBeInstanceOf(RunError);
    return error as RunError;
  }
  throw new Error("expected an error");
}

/** A workdir that others may enter, with a store of one interaction. */
function workdirWithStore(): { workdir: string; folder: string; file: string } {
  const workdir = tempDir();
  fs.chmodSync(workdir, 0o755);
  const folder = path.join(workdir, "feedback_db");
  const file = path.join(folder, "feedback.sqlite");
  const store = FeedbackStore.open(file);
  importJsonlFile(store, writeJsonl(workdir, "in.jsonl", [interactionLine()]));
  store.close();
  return { workdir, folder, file };
}

describe("a workdir that is not writable", () => {
  it("names the workdir when the store's folder cannot be created", () => {
    const workdir = tempDir();
    fs.chmodSync(workdir, 0o555);
    const file = path.join(workdir, "feedback_db", "feedback.sqlite");
    const error = failure(() => FeedbackStore.open(file));
    expect(error.message).toBe(`cannot create the folder ${path.join(workdir, "feedback_db")} for the feedback store: ${workdir} is not writable`);
    expect(error.hint).toMatch(/--workdir/);
  });

  it("names the folder when the store cannot be created in it", () => {
    const workdir = tempDir();
    fs.chmodSync(workdir, 0o755);
    const folder = path.join(workdir, "feedback_db");
    fs.mkdirSync(folder, { mode: 0o555 });
    const file = path.join(folder, "feedback.sqlite");
    const error = failure(() => FeedbackStore.open(file));
    expect(error.message).toBe(`cannot create the feedback store ${file}: the folder ${folder} is not writable`);
  });

  it("names the folder when SQLite cannot make the store's -wal and -shm files beside it, to write or to read", () => {
    const { folder, file } = workdirWithStore();
    fs.chmodSync(file, 0o666); // the file itself may be written: only the folder is in the way
    fs.chmodSync(folder, 0o555);
    for (const options of [{}, { readonly: true }]) {
      const error = failure(() => FeedbackStore.open(file, options).close());
      expect(error.message).toBe(
        `cannot open the feedback store ${file}: the folder ${folder} is not writable, and SQLite keeps the store's -wal and -shm files there (even to read it)`,
      );
      expect(error.hint).toMatch(/chmod u\+w/);
    }
  });

  it("names the store file when it is read-only, and still reads it", () => {
    const { folder, file } = workdirWithStore();
    fs.chmodSync(folder, 0o777);
    fs.chmodSync(file, 0o444);
    const error = failure(() => FeedbackStore.open(file).close());
    expect(error.message).toBe(`the feedback store ${file} is not writable`);
    const counts = unprivileged(() => {
      const store = FeedbackStore.open(file, { readonly: true });
      try {
        return store.counts();
      } finally {
        store.close();
      }
    });
    expect(counts).toEqual({ interactions: 1, feedback: 1 });
  });

  it("names the folder an export cannot be written to", () => {
    const { workdir, file } = workdirWithStore();
    const store = FeedbackStore.open(file);
    const out = path.join(workdir, "exports", "out.jsonl");
    fs.mkdirSync(path.dirname(out), { mode: 0o555 });
    fs.chmodSync(path.dirname(out), 0o555);
    const error = failure(() => exportJsonl(store, out));
    expect(error.message).toBe(`cannot write ${out}: the folder ${path.dirname(out)} is not writable`);
    store.close();
  });
});
