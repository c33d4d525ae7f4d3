import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ExitCode, FORMATS, InputError, loadConfig, trainingPairsFile, workdirPaths, type AtsConfig, type OperationContext, type OperationEvent } from "@ats-lora/core";
import { FeedbackStore, importJsonlFile } from "@ats-lora/feedback";
import { buildStore, KnowledgeStore, passageRetriever } from "@ats-lora/rag";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { buildTrainingPairs, type OpenRetriever } from "./build-training-pairs.js";

const DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "data");

const base = loadConfig({ env: {} });
const config: AtsConfig = { ...base, feedback: { ...base.feedback, min_samples: 1 }, rag: { ...base.rag, chunk_size: 128, chunk_overlap: 16 } };

const LINES = [
  { id: "a", task: "resume_analysis", query: "Analyse the resume of Ana Ruiz, backend engineer.", response: "Strong Go background.", feedback: { rating: 5 } },
  { id: "b", task: "resume_analysis", query: "Analyse the resume of Tomás Lindqvist, ICU nurse.", response: "Knows Java.", feedback: { rating: 2, ideal_response: "Nine years of ICU nursing." } },
  { id: "c", task: "match_score", query: "Score Priya Nair, registered nurse with NCLEX-RN, for the ICU role.", response: "0.9", feedback: { rating: 4 } },
];

/** A workdir whose feedback store holds LINES. */
function workdir(): OperationContext {
  const paths = workdirPaths(fs.mkdtempSync(path.join(os.tmpdir(), "ats-build-db-ops-")));
  const file = path.join(paths.workdir, "interactions.jsonl");
  fs.writeFileSync(file, LINES.map((line) => JSON.stringify(line)).join("\n"));
  const store = FeedbackStore.open(paths.feedbackSqlite);
  importJsonlFile(store, file);
  store.close();
  return { paths, config };
}

/** The knowledge store as the cli opens it for --rag. */
const openRetriever: OpenRetriever = async (store, storeConfig) => {
  const knowledge = await KnowledgeStore.open(store, storeConfig);
  return { retriever: passageRetriever(knowledge, { k: 2, mode: "hybrid" }), close: () => knowledge.close() };
};

/** The operation prints nothing: whatever it has to say arrives as events. */
let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});


describe("buildTrainingPairs, the build-db operation (real embedder, SQLite, FAISS; nothing printed)", () => {
  it("writes the workdir's training pairs, then builds again from the cache and the earlier splits, saying so in events", async () => {
    const context = workdir();
    const events: OperationEvent[] = [];
    const manifest = await buildTrainingPairs({}, context, { onEvent: (event) => events.push(event) });
    expect(manifest.source).toMatchObject({ kind: "store", path: context.paths.feedbackSqlite, interactions: 3, reviewed: 3 });
    for (const format of FORMATS) {
      const rows = (["train", "val", "test"] as const).flatMap((split) =>
        fs.readFileSync(trainingPairsFile(context.paths.trainingPairs, format, split), "utf8").split("\n").filter(Boolean),
      );
      expect(rows, format).toHaveLength(manifest.counts[format].total);
    }
    expect(JSON.parse(fs.readFileSync(path.join(context.paths.trainingPairs, "manifest.json"), "utf8"))).toEqual(manifest);
    const texts = manifest.embedding.texts;
    expect(events.filter((event) => event.type === "progress").at(-1)).toEqual({ type: "progress", stage: "embed", done: texts, total: texts, unit: "count" });
    expect(events.filter((event) => event.type === "warning").map((event) => "message" in event && event.message)).toEqual(manifest.warnings);
    expect(events.filter((event) => event.type === "info")).toEqual([
      { type: "info", message: `embedded ${texts} texts, 0 more from the cache` },
      { type: "info", message: `splits: ${manifest.splits.content_groups} content groups assigned afresh` },
    ]);

    const again: OperationEvent[] = [];
    await buildTrainingPairs({}, context, { onEvent: (event) => again.push(event) });
    expect(again.filter((event) => event.type === "info")).toEqual([
      { type: "info", message: `embedded 0 texts, ${texts} more from the cache` },
      { type: "info", message: "splits: 3 prompts kept the split the earlier build gave them (splits.jsonl), 0 new content groups" },
    ]);
  });

  it("adds the knowledge store's passages through the injected port, and refuses rag without one", async () => {
    const context = workdir();
    const docs = path.join(context.paths.workdir, "docs");
    fs.mkdirSync(docs);
    for (const name of ["role-registered-nurse.md", "role-backend-engineer.md"]) fs.copyFileSync(path.join(DATA, "ats_docs", name), path.join(docs, name));
    await buildStore({ docsDir: docs, outputDir: context.paths.vectorStore, config });
    const output = path.join(context.paths.workdir, "pairs");
    const manifest = await buildTrainingPairs({ outputDir: output, rag: {} }, context, { openRetriever });
    expect(manifest.rag).toEqual({ store: context.paths.vectorStore, top_k: 2, mode: "hybrid" });
    const prompts = (["train", "val", "test"] as const).flatMap((split) =>
      fs
        .readFileSync(trainingPairsFile(output, "sft", split), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { prompt: string }).prompt),
    );
    expect(prompts).toHaveLength(manifest.counts.sft.total);
    for (const prompt of prompts) expect(prompt).toMatch(/^\[role-(registered-nurse|backend-engineer)\.md( › [^\]]+)?\]$/m);
    await expect(buildTrainingPairs({ rag: {} }, context)).rejects.toThrow(InputError);
  });

  it("builds from an interactions file, and stops when its signal aborts, leaving the folder as it was", async () => {
    const context = workdir();
    const manifest = await buildTrainingPairs({ inputFile: path.join(context.paths.workdir, "interactions.jsonl"), strict: true }, context);
    expect(manifest.source).toMatchObject({ kind: "file", interactions: 3 });
    const before = fs.readFileSync(path.join(context.paths.trainingPairs, "manifest.json"), "utf8");
    const controller = new AbortController();
    controller.abort();
    await expect(buildTrainingPairs({}, context, { signal: controller.signal })).rejects.toMatchObject({
      message: "build-db interrupted",
      exitCode: ExitCode.interrupted,
    });
    expect(fs.readFileSync(path.join(context.paths.trainingPairs, "manifest.json"), "utf8")).toBe(before);
    expect(fs.readdirSync(context.paths.feedbackDb).filter((name) => name.startsWith("."))).toEqual([]);
  });
});
