import fs from "node:fs";
import path from "node:path";
import { InputError, loadConfig } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { exportJsonl } from "./export.js";
import { describeProblems, importJsonlFile, importJsonlFiles } from "./import.js";
import { interactionLine, tempDir, tempStore, writeJsonl } from "./test-support.js";

function rejection(run: () => unknown): InputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error("expected the import to be rejected");
}

describe("importJsonlFile", () => {
  it("imports interactions with embedded feedback, several reviewers and gold pairs", () => {
    const store = tempStore();
    const dir = tempDir();
    const file = writeJsonl(dir, "in.jsonl", [
      interactionLine(),
      interactionLine({
        id: "ix-2",
        feedback: [
          { rating: 3, reviewer: "a", created_at: "2026-09-15T09:00:00Z", ideal_response: "first" },
          { rating: 4, reviewer: "b", created_at: "2026-09-16T09:00:00+02:00", correct_points: ["x"] },
        ],
      }),
      { input: "Parse this resume.", output: '{"name": "Ana"}', task: "resume_parse" },
      { query: "q", response: "r", feedback: null },
    ]);
    const report = importJsonlFile(store, file);
    expect(report).toMatchObject({ lines: 4, interactions: { inserted: 4 }, feedback: { inserted: 3 }, gold: 1, skipped_lines: 0 });
    expect(store.feedbackFor("ix-2").map((review) => review.created_at)).toEqual([
      "2026-09-16T07:00:00.000Z",
      "2026-09-15T09:00:00.000Z",
    ].sort());
    const gold = [...store.interactions()].find((item) => item.interaction.origin === "gold")!;
    expect(gold.interaction).toMatchObject({ task: "resume_parse", query: "Parse this resume.", model: "gold" });
    expect(gold.feedback).toEqual([]);
    // Defaults for what the line left out.
    const bare = [...store.interactions()].find((item) => item.interaction.query === "q")!.interaction;
    expect(bare).toMatchObject({ task: "general", model: "unknown", context: [], metadata: {}, origin: "model" });
    expect(bare.id).toMatch(/^ix_[0-9a-f]{20}$/);
  });

  it("is a no-op the second time, also for lines without ids or timestamps", () => {
    const store = tempStore();
    const file = writeJsonl(tempDir(), "in.jsonl", [
      { query: "q1", response: "r1", feedback: { rating: 4 } },
      { input: "i", output: "o" },
      interactionLine(),
    ]);
    importJsonlFile(store, file, { now: new Date("2026-10-01T00:00:00Z") });
    const again = importJsonlFile(store, file, { now: new Date("2026-10-02T00:00:00Z") });
    expect(again).toMatchObject({ interactions: { inserted: 0, updated: 0, unchanged: 3 }, feedback: { inserted: 0, unchanged: 2 } });
    expect(store.counts()).toEqual({ interactions: 3, feedback: 2 });
  });

  it("rejects the same id with different content unless --update", () => {
    const store = tempStore();
    const dir = tempDir();
    importJsonlFile(store, writeJsonl(dir, "a.jsonl", [interactionLine()]));
    const changed = writeJsonl(dir, "b.jsonl", [
      interactionLine({ response: "another answer", feedback: { ...(interactionLine().feedback as object), rating: 3 } }),
    ]);
    const error = rejection(() => importJsonlFile(store, changed));
    expect(error.details.join("\n")).toContain(`${changed}:1: id: "ix-1" is already stored with different response; pass --update to replace it`);
    expect(store.getInteraction("ix-1")!.response).toContain("0.35");

    const report = importJsonlFile(store, changed, { update: true });
    expect(report).toMatchObject({ interactions: { updated: 1 }, feedback: { updated: 1 } });
    expect(store.getInteraction("ix-1")!.response).toBe("another answer");
    expect(store.feedbackFor("ix-1")).toHaveLength(1);
    expect(store.feedbackFor("ix-1")[0]!.rating).toBe(3);
  });

  it("names a duplicate id inside one file with the line it repeats", () => {
    const store = tempStore();
    const file = writeJsonl(tempDir(), "dup.jsonl", [interactionLine(), interactionLine(), interactionLine({ query: "other" })]);
    const error = rejection(() => importJsonlFile(store, file, { update: true }));
    expect(error.details).toEqual([`${file}:3: id: "ix-1" repeats line 1 with different query`]);
    expect(store.counts()).toEqual({ interactions: 0, feedback: 0 });
  });

  it("lists every bad line as FILE:LINE: field: problem and writes nothing", () => {
    const store = tempStore();
    const dir = tempDir();
    const good = interactionLine({ id: "good" });
    const file = path.join(dir, "bad.jsonl");
    const lines: Array<string | Buffer> = [
      JSON.stringify(good),
      JSON.stringify(interactionLine({ id: "r0", feedback: { rating: 0 } })),
      JSON.stringify(interactionLine({ id: "r6", feedback: { rating: 6 } })),
      JSON.stringify(interactionLine({ id: "rs", feedback: { rating: "5" } })),
      JSON.stringify(interactionLine({ id: "rf", feedback: { rating: 3.5 } })),
      '{"id": "broken", "query": ',
      JSON.stringify({ id: "noquery", response: "r" }),
      JSON.stringify({ id: "empty", query: "", response: "r" }),
      JSON.stringify({ id: "ctx", query: "q", response: "r", context: "not a list" }),
      JSON.stringify({ id: "unknown", query: "q", response: "r", respnse: "typo" }),
      Buffer.concat([Buffer.from('{"id": "utf", "query": "caf'), Buffer.from([0xc3, 0x28]), Buffer.from('", "response": "r"}')]),
      "[1, 2, 3]",
      JSON.stringify({ id: "fbempty", query: "q", response: "r", feedback: { rating: 4, reviewer: "" } }),
      JSON.stringify({ id: "idealempty", query: "q", response: "r", feedback: { rating: 2, ideal_response: "" } }),
    ];
    fs.writeFileSync(file, Buffer.concat(lines.flatMap((line) => [Buffer.from(line), Buffer.from("\n")])));
    const error = rejection(() => importJsonlFile(store, file));
    expect(error.exitCode).toBe(2);
    expect(error.message).toBe(`${file}: 13 problems in 13 of 14 lines; nothing from this file was imported`);
    expect(error.details).toEqual([
      `${file}:2: feedback.rating: must be an integer from 1 to 5 (got 0)`,
      `${file}:3: feedback.rating: must be an integer from 1 to 5 (got 6)`,
      `${file}:4: feedback.rating: must be an integer from 1 to 5 (got "5")`,
      `${file}:5: feedback.rating: must be an integer from 1 to 5 (got 3.5)`,
      `${file}:6: (line): not valid JSON: Unexpected end of JSON input`,
      `${file}:7: query: is required`,
      `${file}:8: query: must not be empty (got "")`,
      `${file}:9: context: must be an array of strings (got "not a list")`,
      `${file}:10: respnse: unknown field (did you mean "response"?); put extra data under "metadata"`,
      `${file}:11: (line): not valid UTF-8 (byte 28 of the line)`,
      `${file}:12: (line): must be a JSON object, got an array`,
      `${file}:13: feedback.reviewer: must not be empty (got "")`,
      `${file}:14: feedback.ideal_response: must not be empty (use null when there is no ideal response) (got "")`,
    ]);
    expect(store.counts()).toEqual({ interactions: 0, feedback: 0 });

    const report = importJsonlFile(store, file, { skipInvalid: true });
    expect(report).toMatchObject({ lines: 14, skipped_lines: 13, interactions: { inserted: 1 }, feedback: { inserted: 1 } });
    expect(report.problems.map((problem) => problem.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(store.getInteraction("good")).toBeDefined();
  });

  it("lists problems up to the limit, then counts the rest", () => {
    const store = tempStore();
    const file = writeJsonl(tempDir(), "many.jsonl", Array.from({ length: 30 }, (_, i) => ({ id: `x${i}`, query: "q" })));
    const error = rejection(() => importJsonlFile(store, file, { maxProblemsListed: 5 }));
    expect(error.details).toHaveLength(6);
    expect(error.details[5]).toBe("… and 25 more problems");
  });

  it("keeps a 1 MB field intact", () => {
    const store = tempStore();
    const resume = "Experienced nurse. ".repeat(55_000);
    expect(resume.length).toBeGreaterThan(1_000_000);
    importJsonlFile(store, writeJsonl(tempDir(), "big.jsonl", [interactionLine({ context: [resume] })]));
    expect(store.getInteraction("ix-1")!.context[0]).toBe(resume);
  });

  it("checks that embedded feedback belongs to its line's interaction", () => {
    const store = tempStore();
    const file = writeJsonl(tempDir(), "f.jsonl", [interactionLine({ feedback: { rating: 4, interaction_id: "other" } })]);
    expect(rejection(() => importJsonlFile(store, file)).details[0]).toContain(
      'feedback.interaction_id: is "other" but the line\'s interaction is "ix-1"',
    );
  });

  it("reports JSON nested thousands of levels deep as an invalid line, and goes on with the other files", () => {
    const store = tempStore();
    const dir = tempDir();
    const nested = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    const deep = writeJsonl(dir, "deep.jsonl", [
      { query: "fine", response: "r" },
      `{"query": ${nested(4500)}, "response": "r"}`,
      `{"query": "q", "response": "r", "metadata": {"a": ${nested(4500)}}}`,
      "[".repeat(5000),
    ]);
    const good = writeJsonl(dir, "good.jsonl", [interactionLine()]);
    const result = importJsonlFiles(store, [deep, good]);
    expect(result.files.map((report) => report.file)).toEqual([good]);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]!.problems.slice(0, 2)).toEqual([
      `${deep}:2: query[0][0][0][0][0][0][0]…: nesting deeper than 512 levels`,
      `${deep}:3: metadata.a[0][0][0][0][0][0]…: nesting deeper than 512 levels`,
    ]);
    expect(result.rejected[0]!.problems[2]).toMatch(new RegExp(`^${deep.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4: \\(line\\): not valid JSON`));
    expect(store.counts()).toEqual({ interactions: 1, feedback: 1 });

    const skipped = importJsonlFile(store, deep, { skipInvalid: true });
    expect(skipped).toMatchObject({ lines: 4, skipped_lines: 3, interactions: { inserted: 1 } });
  });

  it("skips a line longer than collect.max_line_bytes without holding it", () => {
    const dir = tempDir();
    const configFile = path.join(dir, "small.yaml");
    fs.writeFileSync(configFile, "collect:\n  max_line_bytes: 65536\n");
    const config = loadConfig({ configFile, env: {} });
    expect(config.collect.max_line_bytes).toBe(65536);
    expect(loadConfig({ env: {} }).collect.max_line_bytes).toBe(16 * 1024 * 1024);

    const store = tempStore();
    const file = writeJsonl(dir, "long.jsonl", [
      interactionLine(),
      interactionLine({ id: "huge", context: ["x".repeat(4_000_000)] }),
      interactionLine({ id: "ix-3" }),
    ]);
    const error = rejection(() => importJsonlFile(store, file, { maxLineBytes: config.collect.max_line_bytes }));
    expect(error.details).toEqual([`${file}:2: (line): line longer than 65536 bytes`]);
    expect(store.counts()).toEqual({ interactions: 0, feedback: 0 });

    const report = importJsonlFile(store, file, { maxLineBytes: config.collect.max_line_bytes, skipInvalid: true });
    expect(report).toMatchObject({ lines: 3, skipped_lines: 1, interactions: { inserted: 2 } });
    expect(store.getInteraction("huge")).toBeUndefined();
  });

  it("rejects an unpaired surrogate the same way on every import", () => {
    const store = tempStore();
    const file = writeJsonl(tempDir(), "surrogate.jsonl", [
      interactionLine({ id: "fine" }),
      '{"id": "lone", "query": "caf\\ud800e", "response": "r"}',
      '{"id": "key", "query": "q", "response": "r", "metadata": {"\\udfff": 1}}',
    ]);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const error = rejection(() => importJsonlFile(store, file));
      expect(error.details).toEqual([
        `${file}:2: query: contains an unpaired surrogate (\\ud800), which is not valid Unicode`,
        `${file}:3: metadata.\\udfff: field name contains an unpaired surrogate (\\udfff), which is not valid Unicode`,
      ]);
      expect(store.counts()).toEqual({ interactions: 0, feedback: 0 });
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const report = importJsonlFile(store, file, { skipInvalid: true });
      expect(report).toMatchObject({ skipped_lines: 2, interactions: attempt === 0 ? { inserted: 1 } : { unchanged: 1 } });
    }
    expect(store.getInteraction("lone")).toBeUndefined();
  });

  it('keeps a "__proto__" metadata key through the store and back out byte-identical', () => {
    const store = tempStore();
    const dir = tempDir();
    const line = '{"id":"p","query":"q","response":"r","metadata":{"__proto__":{"polluted":true},"role":"x"}}';
    importJsonlFile(store, writeJsonl(dir, "proto.jsonl", [line]));
    const stored = store.getInteraction("p")!;
    expect(Object.keys(stored.metadata)).toEqual(["__proto__", "role"]);
    expect(JSON.stringify(stored.metadata)).toBe('{"__proto__":{"polluted":true},"role":"x"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    const exported = path.join(dir, "out.jsonl");
    exportJsonl(store, exported);
    expect(fs.readFileSync(exported, "utf8")).toContain('"metadata":{"__proto__":{"polluted":true},"role":"x"}');
    // Importing the export changes nothing, here and in a fresh store, and exports the same bytes again.
    expect(importJsonlFile(store, exported)).toMatchObject({ interactions: { unchanged: 1 } });
    const copy = tempStore();
    importJsonlFile(copy, exported);
    const again = path.join(dir, "again.jsonl");
    exportJsonl(copy, again);
    expect(fs.readFileSync(again, "utf8")).toBe(fs.readFileSync(exported, "utf8"));
    // A different "__proto__" value is a difference like any other.
    const changed = writeJsonl(dir, "changed.jsonl", [line.replace("true", "false")]);
    expect(rejection(() => importJsonlFile(store, changed)).details[0]).toContain("is already stored with different metadata");
  });

  it("names a number out of range, a folder, and homoglyph field names clearly", () => {
    const store = tempStore();
    const dir = tempDir();
    const file = writeJsonl(dir, "odd.jsonl", [
      '{"query": "q", "response": "r", "feedback": {"rating": 1e400}}',
      '{"query": "q", "response": "r", "metadata": {"score": -1e400}}',
      '{"qu\u0435ry": "q", "response": "r"}',
    ]);
    expect(rejection(() => importJsonlFile(store, file)).details).toEqual([
      `${file}:1: feedback.rating: number out of range (got Infinity; JSON numbers here must be within ±1.8e308)`,
      `${file}:2: metadata.score: number out of range (got -Infinity; JSON numbers here must be within ±1.8e308)`,
      `${file}:3: query: is required`,
      `${file}:3: qu\\u0435ry: unknown field (did you mean "query"? this name has non-ASCII look-alike characters, shown as \\uXXXX); put extra data under "metadata"`,
    ]);
    const result = importJsonlFiles(store, [dir, writeJsonl(dir, "good.jsonl", [interactionLine()])]);
    expect(result.rejected).toEqual([{ file: dir, error: `${dir} is a folder, not a JSONL file`, problems: [] }]);
    expect(result.files).toHaveLength(1);
  });

  it("reads standard input for -, reported as <stdin>", () => {
    const store = tempStore();
    const fd = fs.openSync(writeJsonl(tempDir(), "stdin.jsonl", [interactionLine(), { query: "q" }]), "r");
    try {
      const report = importJsonlFile(store, "-", { stdinFd: fd, skipInvalid: true });
      expect(report).toMatchObject({ file: "<stdin>", lines: 2, skipped_lines: 1, interactions: { inserted: 1 } });
      expect(describeProblems(report)).toEqual(["<stdin>:2: response: is required"]);
    } finally {
      fs.closeSync(fd);
    }
  });
});
