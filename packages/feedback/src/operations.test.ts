import fs from "node:fs";
import path from "node:path";
import { ConflictError, InputError, loadConfig, NotFoundError, workdirPaths, type OperationContext, type OperationEvent } from "@ats-lora/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { addFeedback, exportFeedback, feedbackStats, getInteraction, importFeedback, reviewerQueue, reviewQueue, saveReview, withdrawReview } from "./index.js";
import { interactionLine, tempDir, writeJsonl } from "./test-support.js";

/** The feedback operations on small real input (a temp workdir, real SQLite): typed results, and not a byte printed. */

function workdir(): { context: OperationContext; dir: string } {
  const dir = tempDir();
  return { context: { paths: workdirPaths(dir), config: loadConfig({ env: {} }) }, dir };
}

let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});

describe("the feedback operations", () => {
  it("importFeedback imports, returns the reports and the store, and warns through events only", async () => {
    const { context, dir } = workdir();
    const good = writeJsonl(dir, "good.jsonl", [interactionLine(), { id: "pending", query: "q", response: "r" }]);
    const mixed = writeJsonl(dir, "mixed.jsonl", [{ id: "m1", query: "q", response: "r" }, { id: "m2", query: "q" }]);
    const events: OperationEvent[] = [];
    const result = await importFeedback({ files: [good, mixed] }, context, { onEvent: (event) => events.push(event) });
    expect(result.files).toHaveLength(1);
    expect(result.files[0]).toMatchObject({ file: good, lines: 2, interactions: { inserted: 2 }, feedback: { inserted: 1 } });
    expect(result.rejected).toEqual([
      { file: mixed, error: expect.stringContaining("nothing from this file was imported"), problems: [`${mixed}:2: response: is required`] },
    ]);
    expect(result.store).toEqual({ file: context.paths.feedbackSqlite, interactions: 2, feedback: 1 });
    expect(events.filter((event) => event.type === "progress").every((event) => event.unit === "bytes")).toBe(true);
    expect(events.filter((event) => event.type === "warning")).toEqual([
      { type: "warning", message: result.rejected[0]!.error, details: result.rejected[0]!.problems },
    ]);

    const skipped = await importFeedback({ files: [mixed], skipInvalid: true }, context);
    expect(skipped.files[0]).toMatchObject({ interactions: { inserted: 1 }, skipped_lines: 1 });
    expect(skipped.store).toMatchObject({ interactions: 3 });
  });

  it("addFeedback records an interaction with its review and returns both ids", async () => {
    const { context } = workdir();
    const added = await addFeedback(
      { interaction: { query: "Score this match", response: "0.4", task: "match_score" }, feedback: { rating: 2, reviewer: "p.sharma" } },
      context,
    );
    expect(added).toEqual({ interaction_id: expect.stringMatching(/^ix_/), feedback_id: expect.stringMatching(/^fb_/) });
    expect(Object.keys(added)).toEqual(["interaction_id", "feedback_id"]);
    await expect(addFeedback({ interaction: { query: "q", response: "r" }, feedback: { rating: 9 } }, context)).rejects.toThrow(InputError);
  });

  it("reviewQueue lists what waits for a review and saveReview saves one at once", async () => {
    const { context, dir } = workdir();
    const lines = ["p1", "p2", "p3"].map((id, n) => ({ id, created_at: `2026-10-0${n + 1}T08:00:00Z`, task: "match_score", query: "q", response: "r" }));
    await importFeedback({ files: [writeJsonl(dir, "pending.jsonl", [...lines, interactionLine()])] }, context);
    const queue = await reviewQueue({ task: "match_score", limit: 2 }, context);
    expect(queue.interactions.map((interaction) => interaction.id)).toEqual(["p1", "p2"]);
    expect(queue.pending).toBe(3);

    const saved = await saveReview({ interaction_id: "p1", review: { rating: 4, correct_points: ["right"], reviewer: "r" } }, context);
    expect(saved).toMatchObject({ interaction_id: "p1", rating: 4, correct_points: ["right"], incorrect_points: [], ideal_response: null, reviewer: "r" });
    expect(await reviewQueue({ task: "match_score", limit: 0 }, context)).toEqual({ interactions: [], pending: 2 });
    await expect(saveReview({ interaction_id: "nope", review: { rating: 3 } }, context)).rejects.toThrow(/no interaction with id "nope"/);
  });

  it("reviewerQueue puts what nobody reviewed before what others did; withdrawReview takes back only its reviewer's review", async () => {
    const { context, dir } = workdir();
    const lines = ["p1", "p2", "p3"].map((id, n) => ({ id, created_at: `2026-10-0${n + 1}T08:00:00Z`, task: "match_score", query: "q", response: '{"match_score": 0.5, "reasoning": "r"}' }));
    await importFeedback({ files: [writeJsonl(dir, "pending.jsonl", lines)] }, context);
    const byAnn = await saveReview({ interaction_id: "p1", review: { rating: 2, reviewer: "ann" } }, context);
    const queue = await reviewerQueue({ reviewer: "bob" }, context);
    expect(queue.items.map(({ interaction, feedback }) => [interaction.id, feedback.map((review) => review.reviewer)])).toEqual([["p2", []], ["p3", []], ["p1", ["ann"]]]);
    expect(queue.pending).toBe(3);
    expect((await reviewerQueue({ reviewer: "ann", limit: 1 }, context)).items.map(({ interaction }) => interaction.id)).toEqual(["p2"]);

    await expect(withdrawReview({ feedback_id: byAnn.id, reviewer: "bob" }, context)).rejects.toThrow(ConflictError);
    expect((await getInteraction("p1", context)).feedback).toHaveLength(1);
    expect(await withdrawReview({ feedback_id: byAnn.id, reviewer: "ann" }, context)).toEqual(byAnn);
    expect((await getInteraction("p1", context)).feedback).toEqual([]);
    await expect(withdrawReview({ feedback_id: byAnn.id }, context)).rejects.toThrow(NotFoundError);
    await expect(getInteraction("nope", context)).rejects.toThrow(NotFoundError);

    // A JSON task's ideal response must be JSON; nothing is saved otherwise.
    await expect(saveReview({ interaction_id: "p2", review: { rating: 1, ideal_response: '{"match_score": 0.2,' } }, context)).rejects.toThrow(/must be JSON/);
    expect((await getInteraction("p2", context)).feedback).toEqual([]);
    await saveReview({ interaction_id: "p2", review: { rating: 1, ideal_response: '{"match_score": 0.2, "reasoning": "no"}' } }, context);
    expect((await getInteraction("p2", context)).feedback).toHaveLength(1);
  });

  it("exportFeedback writes the JSONL export, reports it, and sends its notes as events", async () => {
    const { context, dir } = workdir();
    await importFeedback({ files: [writeJsonl(dir, "in.jsonl", [interactionLine(), interactionLine({ id: "two" })])] }, context);
    const out = path.join(dir, "export", "out.jsonl");
    fs.mkdirSync(path.dirname(out));
    // The leftover of an export killed long ago (pid 2^22 + 1 is above Linux's pid_max).
    fs.writeFileSync(`${out}.4194305.partial`, "{half");
    const events: OperationEvent[] = [];
    const report = await exportFeedback({ out, redact: true }, context, { onEvent: (event) => events.push(event) });
    expect(report).toEqual({ file: out, interactions: 2, feedback: 2, redacted: true, notes: [expect.stringContaining("4194305.partial")] });
    expect(events.filter((event) => event.type === "info")).toEqual([{ type: "info", message: report.notes[0] }]);
    expect(fs.readFileSync(out, "utf8").trim().split("\n")).toHaveLength(2);
    expect(fs.readFileSync(out, "utf8")).not.toContain("ana.ruiz@example.com");
  });

  it("feedbackStats returns the store's figures, and a missing store is an error", async () => {
    const { context, dir } = workdir();
    await expect(feedbackStats({}, context)).rejects.toThrow(/no feedback store at/);
    await importFeedback({ files: [writeJsonl(dir, "in.jsonl", [interactionLine(), { query: "q", response: "r" }])] }, context);
    const stats = await feedbackStats({}, context);
    expect(stats).toMatchObject({ interactions: 2, feedback: 1, reviewed: 1, pending_review: 1, rating_histogram: { "2": 1 } });
    expect(stats.min_samples.target).toBe(context.config.feedback.min_samples);
    expect(Object.keys(stats.by_task)).toEqual(["match_score", "general"].sort());
  });

  it("stops before it starts when the signal is already aborted", async () => {
    const { context } = workdir();
    const signal = AbortSignal.abort();
    await expect(importFeedback({ files: [] }, context, { signal })).rejects.toMatchObject({ exitCode: 130 });
    await expect(feedbackStats({}, context, { signal })).rejects.toMatchObject({ exitCode: 130 });
    expect(fs.existsSync(context.paths.feedbackSqlite)).toBe(false);
  });
});
