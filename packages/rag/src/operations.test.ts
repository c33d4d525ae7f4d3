import fs from "node:fs";
import path from "node:path";
import { ExitCode, workdirPaths, type OperationContext, type OperationEvent } from "@ats-lora/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { buildKnowledgeStore } from "./build-knowledge-store.js";
import { evaluateKnowledgeStore } from "./evaluate-knowledge-store.js";
import { queryKnowledgeStore } from "./query-knowledge-store.js";
import { config, copyDocs, snapshot, tempDir } from "./test-support.js";

/** The operations print nothing: whatever they have to say arrives as events. */
let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});


describe("the rag operations (real embedder, FAISS and SQLite; nothing printed)", () => {
  it("build, query and evaluate the workdir's knowledge store, reporting through events", async () => {
    const docs = copyDocs(["role-registered-nurse.md", "role-devops-sre.md", "fair-hiring-policy.md"]);
    fs.writeFileSync(path.join(docs, "photo.png"), "not a document");
    const context: OperationContext = { paths: workdirPaths(tempDir()), config };
    const events: OperationEvent[] = [];

    const report = await buildKnowledgeStore({ docsDir: docs }, context, { onEvent: (event) => events.push(event) });
    expect(report.files.added).toEqual(["fair-hiring-policy.md", "role-devops-sre.md", "role-registered-nurse.md"]);
    expect(report.manifest.counts.sources).toBe(3);
    expect(report.embedded_chunks).toBe(report.manifest.counts.chunks);
    expect(fs.existsSync(path.join(context.paths.vectorStore, "manifest.json"))).toBe(true);
    expect(fs.existsSync(context.paths.embeddingCache)).toBe(true);
    expect(events.filter((event) => event.type === "progress").at(-1)).toEqual({
      type: "progress",
      stage: "embed",
      done: report.embedded_chunks,
      total: report.embedded_chunks,
      unit: "count",
    });
    expect(events.filter((event) => event.type === "warning")).toEqual([
      { type: "warning", message: "1 file(s) skipped:", details: ["photo.png: unsupported file type .png"] },
    ]);

    const answer = await queryKnowledgeStore({ query: "NCLEX-RN licensed nurses" }, context);
    expect(answer).toMatchObject({ query: "NCLEX-RN licensed nurses", mode: config.rag.mode });
    expect(answer.results).toHaveLength(config.rag.top_k);
    expect(answer.results[0]!.source).toBe("role-registered-nurse.md");

    const queriesFile = path.join(tempDir(), "queries.jsonl");
    fs.writeFileSync(
      queriesFile,
      ['{"query": "NCLEX-RN licence", "relevant": ["role-registered-nurse.md"]}', '{"query": "Terraform and Kubernetes on-call", "relevant": ["role-devops-sre.md"]}'].join("\n"),
    );
    const progress: OperationEvent[] = [];
    const evaluation = await evaluateKnowledgeStore({ queriesFile }, context, { onEvent: (event) => progress.push(event) });
    expect(evaluation).toMatchObject({ store: context.paths.vectorStore, queries_file: queriesFile, k: config.rag.top_k });
    expect(Object.keys(evaluation.modes)).toEqual(["dense", "lexical", "hybrid"]);
    expect(evaluation.modes.hybrid!.recall_at_k).toBe(1);
    expect(progress.at(-1)).toEqual({ type: "progress", stage: "queries", done: 2, total: 2, unit: "count" });
  });

  it("stops when its signal aborts, leaving the store as it was", async () => {
    const docs = copyDocs(["role-devops-sre.md"]);
    const context: OperationContext = { paths: workdirPaths(tempDir()), config };
    await buildKnowledgeStore({ docsDir: docs }, context);
    const before = snapshot(context.paths.vectorStore);
    const controller = new AbortController();
    controller.abort();
    await expect(buildKnowledgeStore({ docsDir: docs, rebuild: true }, context, { signal: controller.signal })).rejects.toMatchObject({
      message: "rag build interrupted",
      exitCode: ExitCode.interrupted,
    });
    expect(snapshot(context.paths.vectorStore)).toEqual(before);
    expect(fs.readdirSync(context.paths.workdir).filter((name) => name.startsWith(".vector_store."))).toEqual([]);
  });
});
