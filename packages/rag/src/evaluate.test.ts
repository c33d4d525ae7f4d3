import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { evaluateRetrieval, readLabelledQueries, scoreRanking } from "./evaluate.js";
import { KnowledgeStore } from "./retrieve.js";
import { buildStore } from "./store.js";

const DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "data");

describe("retrieval metrics", () => {
  it("computes recall@k over distinct relevant sources and the reciprocal rank of the first hit", () => {
    // Two relevant sources; the top 3 passages hold one of them (twice) at ranks 2 and 3.
    expect(scoreRanking(["x.md", "a.md", "a.md", "b.md"], ["a.md", "b.md"], 3)).toEqual({ recall_at_k: 0.5, reciprocal_rank: 0.5 });
    expect(scoreRanking(["x.md", "a.md", "a.md", "b.md"], ["a.md", "b.md"], 4)).toEqual({ recall_at_k: 1, reciprocal_rank: 0.5 });
    // MRR looks at 10 passages even when k is smaller; beyond 10 it is 0.
    const eleven = [...Array.from({ length: 10 }, () => "x.md"), "a.md"];
    expect(scoreRanking(eleven, ["a.md"], 5)).toEqual({ recall_at_k: 0, reciprocal_rank: 0 });
    expect(scoreRanking(eleven.slice(1), ["a.md"], 5)).toEqual({ recall_at_k: 0, reciprocal_rank: 0.1 });
  });

  it("rejects a query file with bad lines or unknown sources, naming file and line", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-rag-q-")), "q.jsonl");
    fs.writeFileSync(file, ['{"query": "ok", "relevant": ["a.md"]}', '{"query": "", "relevant": ["a.md"]}', '{"query": "x", "relevant": []}', '{"query": "x", "relevant": ["a.md"], "kidn": "s"}'].join("\n"));
    expect(() => readLabelledQueries(file, new Set(["a.md"]))).toThrow(expect.objectContaining({
      details: expect.arrayContaining([`${file}:2: query: Too small: expected string to have >=1 characters`, expect.stringMatching(new RegExp(`^${file}:3: relevant: `)), `${file}:4: (line): unknown field kidn`]),
    }));
    fs.writeFileSync(file, '{"query": "ok", "relevant": ["a.md"]}\n{"query": "ok", "relevant": ["role-devops.md"]}\n');
    expect(() => readLabelledQueries(file, new Set(["a.md"]))).toThrow(expect.objectContaining({ details: [`${file}:2: relevant: no source role-devops.md in the store`] }));
  });

  it("on the bundled labelled queries, hybrid beats dense on exact-term queries (real embedder, FAISS, FTS5)", async () => {
    const config = loadConfig({ env: {} });
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-rag-eval-")), "store");
    await buildStore({ docsDir: path.join(DATA, "ats_docs"), outputDir: out, config });
    const store = await KnowledgeStore.open(out, config);
    try {
      const file = path.join(DATA, "rag-queries.jsonl");
      const queries = readLabelledQueries(file, store.sources());
      expect(queries.length).toBeGreaterThanOrEqual(40);
      const evaluation = await evaluateRetrieval(store, queries, { k: 5, queriesFile: file });
      const { dense, lexical, hybrid } = evaluation.modes;
      expect(dense!.by_kind.exact_term!.queries).toBeGreaterThanOrEqual(20);
      expect(hybrid!.by_kind.exact_term!.recall_at_k).toBeGreaterThan(dense!.by_kind.exact_term!.recall_at_k + 0.1);
      expect(hybrid!.by_kind.exact_term!.mrr_at_10).toBeGreaterThan(dense!.by_kind.exact_term!.mrr_at_10 + 0.1);
      // Fusion keeps most of what dense gets right on paraphrased questions, where BM25 alone falls short.
      expect(lexical!.by_kind.semantic!.mrr_at_10).toBeLessThan(dense!.by_kind.semantic!.mrr_at_10);
      expect(hybrid!.mrr_at_10).toBeGreaterThanOrEqual(Math.max(dense!.mrr_at_10, lexical!.mrr_at_10));
      expect(evaluation.per_query).toHaveLength(queries.length);
      expect(evaluation.per_query[0]!.modes.hybrid!.sources).toHaveLength(5);
    } finally {
      await store.close();
    }
  });
});
