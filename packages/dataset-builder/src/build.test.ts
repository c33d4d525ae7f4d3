import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DpoRowSchema, FORMATS, InputError, KtoRowSchema, loadConfig, SftRowSchema, SPLITS, type AtsConfig, type Format } from "@ats-lora/core";
import { FeedbackStore, importJsonlFile } from "@ats-lora/feedback";
import { describe, expect, it } from "vitest";
import { buildStore, KnowledgeStore, passageRetriever } from "@ats-lora/rag";
import { writeTrainingPairs, type BuildOptions } from "./build.js";
import type { TrainingPairsManifest } from "./schema.js";
import { contentKey, splitOf } from "./split.js";

const RESUME_1 =
  "Ana Ruiz, Madrid. Backend engineer, 6 years of Go and PostgreSQL at Cabify; led the move of 40 services to Kubernetes (EKS). BSc Computer Science, UPM 2017.";
const RESUME_2 =
  "Tomás Lindqvist, Malmö. Registered nurse in an adult ICU for 9 years; ACLS instructor; charge nurse two shifts a week. BScN, Lund University 2015.";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-build-db-"));
}

/** The build's manifest (what build-db prints). */
async function buildManifest(options: BuildOptions): Promise<TrainingPairsManifest> {
  return (await writeTrainingPairs(options)).manifest;
}

function config(overrides: Partial<AtsConfig["feedback"]> = {}): AtsConfig {
  const base = loadConfig({ env: {} });
  return { ...base, feedback: { ...base.feedback, min_samples: 1, ...overrides } };
}

function storeWith(lines: unknown[]): string {
  const dir = tempDir();
  const file = path.join(dir, "in.jsonl");
  fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n"));
  const storeFile = path.join(dir, "feedback_db", "feedback.sqlite");
  const store = FeedbackStore.open(storeFile);
  importJsonlFile(store, file);
  store.close();
  return storeFile;
}

const line = (id: string, query: string, response: string, feedback?: unknown, context: string[] = []) => ({
  id,
  created_at: "2026-10-01T00:00:00Z",
  task: "resume_analysis",
  query,
  context,
  response,
  model: "m",
  ...(feedback === undefined ? {} : { feedback }),
});

function readRows(dir: string, format: Format): Array<Record<string, unknown>> {
  return SPLITS.flatMap((split) =>
    fs
      .readFileSync(path.join(dir, format, `${split}.jsonl`), "utf8")
      .split("\n")
      .filter((text) => text !== "")
      .map((text) => ({ ...(JSON.parse(text) as Record<string, unknown>), split })),
  );
}

describe("buildTrainingPairs", () => {
  it("makes SFT, DPO and KTO rows by the rules, collapses paraphrased prompts and keeps distinct ones", async () => {
    const lines = [
      line("a", "Analyse the resume of candidate A.", "Strong Go background.", { rating: 5 }),
      line("b", "Analyse the resume of candidate B.", "Knows Java.", { rating: 2, ideal_response: "Knows Go and Kubernetes; no Java." }),
      line("c", "Analyse the resume of candidate C.", "Average answer.", { rating: 3 }),
      line("d", "Analyse the resume of candidate D.", "Wrong answer.", { rating: 1 }),
      line("e", "Analyse the resume of candidate E.", "Good answer.", [{ rating: 4, reviewer: "x" }, { rating: 5, reviewer: "y" }]),
      line("f", "Analyse the resume of candidate F.", "Mixed answer.", [{ rating: 3, reviewer: "x" }, { rating: 4, reviewer: "y" }]),
      line("h", "Analyse the resume of candidate H.", "Not reviewed yet."),
      line("i", "Analyse the resume of candidate I.", "Same as ideal.", { rating: 4, ideal_response: "Same as ideal." }),
      // Paraphrases of one request on the same resume: the better-rated is kept, the worse becomes a DPO pair.
      line("p1", "Analyse this resume for the backend role.", "Has no cloud experience.", { rating: 2 }, [RESUME_1]),
      line("p2", "Please analyse this resume for the backend role.", "6 years of Go; led the EKS migration.", { rating: 5 }, [RESUME_1]),
      // The same request on another resume is not a duplicate.
      line("p3", "Analyse this resume for the backend role.", "Nine years of ICU nursing; not a backend profile.", { rating: 4 }, [RESUME_2]),
      { id: "g", input: "Parse: Jane Doe, Python developer.", output: '{"name": "Jane Doe", "skills": ["Python"]}', task: "resume_parse" },
    ];
    const storeFile = storeWith(lines);
    const out = path.join(tempDir(), "training_pairs");
    const manifest = await buildManifest({ config: config(), storeFile, outputDir: out });

    const sft = readRows(out, "sft");
    const dpo = readRows(out, "dpo");
    const kto = readRows(out, "kto");
    const ids = (rows: Array<Record<string, unknown>>) => rows.map((row) => (row.source_ids as string[]).join("+")).sort();
    expect(ids(sft)).toEqual(["a", "b", "e", "g", "i", "p2", "p3"]);
    expect(sft.find((row) => (row.source_ids as string[])[0] === "b")!.completion).toBe("Knows Go and Kubernetes; no Java.");
    expect(ids(dpo)).toEqual(["b", "p2+p1"]);
    expect(dpo.find((row) => (row.source_ids as string[])[0] === "p2")).toMatchObject({
      chosen: "6 years of Go; led the EKS migration.",
      rejected: "Has no cloud experience.",
    });
    const labels = kto.map((row) => `${(row.source_ids as string[])[0]}:${row.label}:${row.completion}`).sort();
    expect(labels).toEqual([
      "a:true:Strong Go background.",
      "b:false:Knows Java.",
      "b:true:Knows Go and Kubernetes; no Java.",
      "d:false:Wrong answer.",
      "e:true:Good answer.",
      "g:true:{\"name\": \"Jane Doe\", \"skills\": [\"Python\"]}",
      "i:true:Same as ideal.",
      "p2:true:6 years of Go; led the EKS migration.",
      "p3:true:Nine years of ICU nursing; not a backend profile.",
    ]);
    // Rows share their content group's split: a new group's is the hash of its smallest content key (p1 and p2
    // are one group; every other prompt is a group of its own).
    const keyOf = (id: string): string => {
      const source = lines.find((entry) => entry.id === id)!;
      return "input" in source ? contentKey(source.task, source.input, []) : contentKey(source.task, source.query, source.context);
    };
    const groupKey = (id: string): string => (id === "p1" || id === "p2" ? [keyOf("p1"), keyOf("p2")].sort()[0]! : keyOf(id));
    for (const row of [...sft, ...dpo, ...kto]) {
      expect(row.split).toBe(splitOf(groupKey((row.source_ids as string[])[0]!), manifest.seed, manifest.split));
    }
    expect(manifest.splits.content_groups).toBe(10);
    expect(manifest.splits.leakage).toMatchObject({ violations: 0, moved: 0, examples: [] });
    expect(manifest.counts.sft.total).toBe(7);
    expect(manifest.counts.dpo.total).toBe(2);
    expect(manifest.counts.kto.total).toBe(9);
    expect(manifest.dedupe).toMatchObject({ groups: 1, removed: 1, removed_ids: ["p1"] });
    expect(manifest.source).toMatchObject({ interactions: 12, gold: 1, reviewed: 10, unreviewed_skipped: 1 });
    expect(manifest.drift.corrections).toBe(1);
    expect(manifest.drift.mean).toBeGreaterThan(0);
    const drift = fs.readFileSync(path.join(out, "drift.jsonl"), "utf8").trim().split("\n").map((text) => JSON.parse(text));
    expect(drift).toEqual([
      expect.objectContaining({ interaction_id: "b", task: "resume_analysis", rating: 2, drift: manifest.drift.mean }),
    ]);
    expect(drift[0].similarity + drift[0].drift).toBeCloseTo(1, 4);
    // The prompt is the shared builder's.
    expect(sft[0]!.prompt).toMatch(/^### Instruction:\n.+\n\n(### Context:\n[\s\S]+\n\n)?### Input:\n[\s\S]+\n\n### Response:\n$/);
  });

  it("writes only rows with the TRL keys and types, and is byte-identical when run again", async () => {
    const sample = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..", "..", "data", "samples");
    const storeFile = storeWith([]);
    const store = FeedbackStore.open(storeFile);
    importJsonlFile(store, path.join(sample, "interactions.jsonl"));
    importJsonlFile(store, path.join(sample, "gold_pairs.jsonl"));
    store.close();
    const first = path.join(tempDir(), "a");
    const second = path.join(tempDir(), "b");
    const cacheFile = path.join(tempDir(), "cache.sqlite");
    const manifest = await buildManifest({ config: config({ min_samples: 100 }), storeFile, outputDir: first, embeddingCacheFile: cacheFile });
    await buildManifest({ config: config({ min_samples: 100 }), storeFile, outputDir: second, embeddingCacheFile: cacheFile });
    for (const format of FORMATS) {
      for (const split of SPLITS) {
        const a = fs.readFileSync(path.join(first, format, `${split}.jsonl`));
        expect(a.equals(fs.readFileSync(path.join(second, format, `${split}.jsonl`))), `${format}/${split}`).toBe(true);
      }
    }
    expect(fs.readFileSync(path.join(first, "manifest.json"), "utf8")).toBe(fs.readFileSync(path.join(second, "manifest.json"), "utf8"));

    const schemas = { sft: SftRowSchema, dpo: DpoRowSchema, kto: KtoRowSchema };
    for (const format of FORMATS) {
      const rows = readRows(first, format).map(({ split: _split, ...row }) => row);
      expect(rows.length).toBeGreaterThan(20);
      for (const row of rows) schemas[format].parse(row);
    }
    expect(Object.keys(manifest.by_task).sort()).toEqual(["interview_question", "match_score", "resume_analysis", "resume_parse"]);
    expect(manifest.min_samples).toEqual({ target: 100, reviewed: 160, met: true });
    expect(manifest.warnings.filter((warning) => warning.includes("min_samples"))).toEqual([]);
  });

  it("keeps every interaction in its split when data is added", async () => {
    const make = (n: number, offset = 0) =>
      Array.from({ length: n }, (_, i) =>
        line(`s${offset + i}`, `Question ${offset + i} about skill ${(offset + i) * 7919}`, `Answer number ${offset + i}`, { rating: 5 }),
      );
    const small = path.join(tempDir(), "small");
    const large = path.join(tempDir(), "large");
    // These templated prompts are near-duplicates of each other at the default threshold; this test is about
    // splits, so only exact duplicates may collapse.
    const exactOnly = { ...config(), dataset: { ...config().dataset, dedupe_threshold: 1 } };
    await buildManifest({ config: exactOnly, storeFile: storeWith(make(40)), outputDir: small });
    await buildManifest({ config: exactOnly, storeFile: storeWith([...make(40), ...make(40, 40)]), outputDir: large });
    const splitById = (dir: string) => new Map(readRows(dir, "sft").map((row) => [(row.source_ids as string[])[0], row.split]));
    const before = splitById(small);
    const after = splitById(large);
    expect(before.size).toBe(40);
    expect(after.size).toBe(80);
    for (const [id, split] of before) expect(after.get(id), id).toBe(split);
    expect(new Set(after.values())).toEqual(new Set(["train", "val", "test"]));
  });

  it("warns below the minimum samples, fails with strict, and refuses an empty store", async () => {
    const storeFile = storeWith([line("a", "q", "r", { rating: 5 })]);
    const warnings: string[] = [];
    const manifest = await buildManifest({
      config: config({ min_samples: 100 }),
      storeFile,
      outputDir: path.join(tempDir(), "o"),
      onWarning: (warning) => warnings.push(warning),
    });
    expect(warnings[0]).toContain("only 1 reviewed interactions, fewer than feedback.min_samples (100)");
    expect(manifest.warnings).toEqual(warnings);
    await expect(
      buildManifest({ config: config({ min_samples: 100 }), storeFile, outputDir: path.join(tempDir(), "o"), strict: true }),
    ).rejects.toThrow(InputError);
    await expect(buildManifest({ config: config(), storeFile: storeWith([]), outputDir: path.join(tempDir(), "o") })).rejects.toThrow(
      /is empty: there is nothing to build from/,
    );
    await expect(
      buildManifest({ config: config(), storeFile: path.join(tempDir(), "none.sqlite"), outputDir: path.join(tempDir(), "o") }),
    ).rejects.toThrow(/no feedback store at/);
  });

  it("with --rag, adds the knowledge store's passages to every prompt after the interaction's own context", async () => {
    const docs = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..", "..", "data", "ats_docs");
    const storeDir = path.join(tempDir(), "vector_store");
    await buildStore({ docsDir: docs, outputDir: storeDir, config: config() });
    const storeFile = storeWith([
      line("ix_nurse", "Does this nurse meet the NCLEX licence requirement?", "Yes.", { rating: 5 }, [RESUME_2]),
      line("ix_go", "Summarise this backend engineer's fit.", "Strong Go and Kubernetes.", { rating: 5 }, [RESUME_1]),
    ]);
    const knowledge = await KnowledgeStore.open(storeDir, config());
    const out = path.join(tempDir(), "pairs");
    let manifest;
    try {
      manifest = await buildManifest({ config: config(), storeFile, outputDir: out, retriever: passageRetriever(knowledge, { k: 2, mode: "hybrid" }) });
    } finally {
      await knowledge.close();
    }
    expect(manifest.rag).toEqual({ store: storeDir, top_k: 2, mode: "hybrid" });
    const nurse = readRows(out, "sft").find((row) => (row.source_ids as string[]).includes("ix_nurse"))!;
    const prompt = nurse.prompt as string;
    expect(prompt).toContain("[role-registered-nurse.md");
    expect(prompt.match(/^\[[\w-]+\.md( › [^\]]+)?\]$/gm)).toHaveLength(2);
    // The resume comes first, then the retrieved passages, then the query.
    expect(prompt.indexOf(RESUME_2)).toBeLessThan(prompt.indexOf("[role-registered-nurse.md"));
    expect(prompt.indexOf("[role-registered-nurse.md")).toBeLessThan(prompt.lastIndexOf("NCLEX licence requirement"));

    const plain = await buildManifest({ config: config(), storeFile, outputDir: path.join(tempDir(), "plain") });
    expect(plain.rag).toBeNull();
  });
});
