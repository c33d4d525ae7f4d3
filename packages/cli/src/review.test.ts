import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import * as pty from "node-pty";
import { describe, expect, it } from "vitest";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");

/** Drives `collect review` in a real pseudo-terminal: waits for each prompt, then types the answer. */
class Terminal {
  private output = "";
  private cursor = 0;
  readonly exited: Promise<number>;
  private readonly process: pty.IPty;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.process = pty.spawn(process.execPath, [BIN, ...args], {
      cols: 120,
      rows: 40,
      env: { ...process.env, NO_COLOR: "1", ...env } as Record<string, string>,
    });
    this.process.onData((data) => (this.output += data));
    this.exited = new Promise((resolve) => this.process.onExit(({ exitCode }) => resolve(exitCode)));
  }

  /** Resolves once `text` appears after what was already consumed. */
  async waitFor(text: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.output.indexOf(text, this.cursor);
      if (at !== -1) {
        this.cursor = at + text.length;
        return;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)}; screen:\n${this.output.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async answer(prompt: string, text: string): Promise<void> {
    await this.waitFor(prompt);
    this.process.write(`${text}\r`);
  }

  get screen(): string {
    return this.output;
  }
}

function setup(): { workdir: string; db: string } {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-review-"));
  const file = path.join(workdir, "pending.jsonl");
  const lines = [
    { id: "p1", created_at: "2026-10-01T08:00:00Z", task: "resume_parse", query: "Parse this resume.", context: ["Ana Ruiz, ana@example.com, Go developer since 2019"], response: '{"name": "Ana Ruiz"}', model: "m" },
    { id: "p2", created_at: "2026-10-02T08:00:00Z", task: "match_score", query: "Score the match.", context: ["Job: SRE", "Resume: 3 years AWS"], response: '{"match_score": 0.9}', model: "m" },
    { id: "p3", created_at: "2026-10-03T08:00:00Z", task: "match_score", query: "Score again.", response: "0.5", model: "m" },
    { id: "done", created_at: "2026-10-04T08:00:00Z", query: "Already reviewed", response: "r", feedback: { rating: 5 } },
  ];
  fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n"));
  const imported = spawnSync(process.execPath, [BIN, "--workdir", workdir, "collect", "import", file], { encoding: "utf8" });
  expect(imported.status, imported.stderr).toBe(0);
  return { workdir, db: path.join(workdir, "feedback_db", "feedback.sqlite") };
}

describe("collect review in a pseudo-terminal", () => {
  it("shows each pending interaction, saves each answer at once, skips and quits", async () => {
    const { workdir, db } = setup();
    const terminal = new Terminal(["--workdir", workdir, "collect", "review", "--reviewer", "p.sharma"]);

    await terminal.waitFor("[1/3] p1 · task resume_parse");
    await terminal.waitFor("Ana Ruiz, ana@example.com, Go developer since 2019");
    await terminal.answer("Rating 1-5", "7");
    await terminal.waitFor("type a whole number from 1 to 5");
    terminal["process"].write("\u007f2\r"); // backspace over the 7, then a valid rating
    await terminal.answer("Correct point 1", "found the name");
    await terminal.answer("Correct point 2", "");
    await terminal.answer("Incorrect point 1", "missed the e-mail");
    await terminal.answer("Incorrect point 2", "missed the skills");
    await terminal.answer("Incorrect point 3", "");
    await terminal.answer("Ideal response", '{"name": "Ana Ruiz", "email": "ana@example.com"}');
    await terminal.waitFor("saved fb_");

    // Saved before the session ends.
    const reader = new Database(db, { readonly: true });
    const saved = reader.prepare("SELECT * FROM feedback WHERE interaction_id = 'p1'").all() as Array<Record<string, unknown>>;
    expect(saved).toHaveLength(1);
    expect(saved[0]).toMatchObject({
      rating: 2,
      reviewer: "p.sharma",
      correct_points: '["found the name"]',
      incorrect_points: '["missed the e-mail","missed the skills"]',
      ideal_response: '{"name": "Ana Ruiz", "email": "ana@example.com"}',
    });

    await terminal.waitFor("[2/3] p2 · task match_score");
    await terminal.answer("Rating 1-5", "s");
    await terminal.waitFor("[3/3] p3");
    await terminal.answer("Rating 1-5", "q");
    expect(await terminal.exited).toBe(0);
    expect(terminal.screen).toContain("reviewed 1, skipped 1; 2 interaction(s) still without feedback");
    expect(reader.prepare("SELECT COUNT(*) FROM feedback").pluck().get()).toBe(2);
    reader.close();
  });

  it("filters by task, takes a multi-line ideal response from $EDITOR, and says when nothing is left", async () => {
    const { workdir, db } = setup();
    // A stand-in editor: writes a two-line answer into the file it is given, as a person would.
    const editorScript = path.join(workdir, "editor.sh");
    fs.writeFileSync(editorScript, `#!/bin/sh\nprintf '{\\n  "name": "Ana Ruiz"\\n}\\n' > "$1"\n`, { mode: 0o755 });
    const terminal = new Terminal(["--workdir", workdir, "collect", "review", "--task", "resume_parse", "--reviewer", "r"], {
      VISUAL: editorScript,
      EDITOR: editorScript,
    });
    await terminal.waitFor("[1/1] p1");
    await terminal.answer("Rating 1-5", "3");
    await terminal.answer("Correct point 1", "");
    await terminal.answer("Incorrect point 1", "");
    await terminal.answer("Ideal response", "e");
    expect(await terminal.exited).toBe(0);
    const reader = new Database(db, { readonly: true });
    expect(reader.prepare("SELECT ideal_response FROM feedback WHERE interaction_id = 'p1'").pluck().get()).toBe(
      '{\n  "name": "Ana Ruiz"\n}',
    );
    reader.close();
    const again = new Terminal(["--workdir", workdir, "collect", "review", "--task", "resume_parse"]);
    await again.waitFor("Nothing to review");
    expect(await again.exited).toBe(0);
  });

  it("keeps what was saved when interrupted with Ctrl-C, and exits 130", async () => {
    const { workdir, db } = setup();
    const terminal = new Terminal(["--workdir", workdir, "collect", "review", "--reviewer", "r"]);
    await terminal.answer("Rating 1-5", "5");
    await terminal.answer("Correct point 1", "");
    await terminal.answer("Incorrect point 1", "");
    await terminal.answer("Ideal response", "");
    await terminal.waitFor("[2/3] p2");
    await terminal.waitFor("Rating 1-5");
    terminal["process"].write("\u0003");
    expect(await terminal.exited).toBe(130);
    const reader = new Database(db, { readonly: true });
    expect(reader.prepare("SELECT interaction_id FROM feedback WHERE reviewer = 'r'").pluck().all()).toEqual(["p1"]);
    reader.close();
  });
});
