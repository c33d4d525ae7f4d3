import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Command } from "commander";
import { ExitCode, type AtsError } from "@ats-lora/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { collectCommand } from "./command.js";
import { importJsonlFile } from "./import.js";
import { SCHEMA_VERSION } from "./migrations.js";
import { FeedbackStore } from "./store.js";
import { interactionLine, tempDir, writeJsonl } from "./test-support.js";

/** `ats-lora --workdir W collect …` in this process, as the CLI mounts it; what it printed, or what it threw. */
async function collect(workdir: string, ...args: string[]) {
  const program = new Command("ats-lora")
    .option("--workdir <dir>")
    .option("--config <file>")
    .option("--json")
    .option("--quiet")
    .exitOverride()
    .addCommand(collectCommand());
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => (stdout.push(String(chunk)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => (stderr.push(String(chunk)), true));
  let error: AtsError | undefined;
  try {
    await program.parseAsync(["--workdir", workdir, "collect", ...args], { from: "user" });
  } catch (caught) {
    error = caught as AtsError;
  } finally {
    vi.restoreAllMocks();
  }
  return { stdout: stdout.join(""), stderr: stderr.join(""), error };
}

function workdirWithStore(): { workdir: string; file: string } {
  const workdir = tempDir();
  const file = path.join(workdir, "feedback_db", "feedback.sqlite");
  const store = FeedbackStore.open(file);
  importJsonlFile(store, writeJsonl(workdir, "in.jsonl", [interactionLine(), interactionLine({ id: "two" })]));
  store.close();
  return { workdir, file };
}

afterEach(() => vi.restoreAllMocks());

describe("collect export / collect stats (the commands)", () => {
  it("`collect export --out W/feedback_db/feedback.sqlite` exits 2 and the next command still reads the store", async () => {
    const { workdir, file } = workdirWithStore();
    const exported = await collect(workdir, "export", "--out", path.join(workdir, "feedback_db", "feedback.sqlite"));
    expect(exported.error?.exitCode).toBe(ExitCode.badInput);
    expect(exported.error?.message).toMatch(/is the feedback store itself .*refusing to write the export onto it/);
    expect(exported.stdout).toBe("");
    const stats = await collect(workdir, "stats", "--json");
    expect(stats.error).toBeUndefined();
    expect(JSON.parse(stats.stdout)).toMatchObject({ interactions: 2, feedback: 2 });
    expect(fs.readdirSync(path.dirname(file)).filter((name) => name.endsWith(".partial"))).toEqual([]);
  });

  it("stats and export refuse a store made by a newer ats-lora, naming the file and both versions", async () => {
    const { workdir, file } = workdirWithStore();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 7}`);
    db.close();
    const expected = `${file} was made by a newer ats-lora (schema version ${SCHEMA_VERSION + 7}; this ats-lora knows up to ${SCHEMA_VERSION}): upgrade ats-lora to use it`;
    const stats = await collect(workdir, "stats");
    expect(stats.error?.message).toBe(expected);
    expect(stats.error?.exitCode).toBe(ExitCode.failed);
    const out = path.join(workdir, "out.jsonl");
    const exported = await collect(workdir, "export", "--out", out);
    expect(exported.error?.message).toBe(expected);
    expect(fs.existsSync(out)).toBe(false);
  });

  it("says which leftover partial files of a killed export it removed", async () => {
    const { workdir } = workdirWithStore();
    const out = path.join(workdir, "out.jsonl");
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    fs.writeFileSync(`${out}.${gone}.partial`, "{half");
    const exported = await collect(workdir, "export", "--out", out);
    expect(exported.error).toBeUndefined();
    expect(exported.stderr).toContain(`removed ${out}.${gone}.partial, left by an export (pid ${gone}) that did not finish`);
    expect(exported.stdout).toContain(`wrote 2 interactions with 2 feedback to ${out}`);
  });
});
