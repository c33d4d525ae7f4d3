import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, type AtsConfig } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { KnowledgeStore } from "./retrieve.js";
import { buildStore } from "./store.js";

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "data", "ats_docs");
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "test-fixtures");
const base = loadConfig({ env: {} });
const config: AtsConfig = { ...base, rag: { ...base.rag, chunk_size: 128, chunk_overlap: 16 } };

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-rag-"));
}

function copyDocs(names: string[]): string {
  const dir = tempDir();
  for (const name of names) fs.copyFileSync(path.join(DOCS, name), path.join(dir, name));
  return dir;
}

describe("the knowledge store (real embedder, real faiss-node, real SQLite FTS5)", () => {
  it("builds from the bundled docs and finds the right passage, dense, lexical and hybrid", async () => {
    const out = path.join(tempDir(), "vector_store");
    const report = await buildStore({ docsDir: DOCS, outputDir: out, config });
    expect(report.files.added.length).toBe(fs.readdirSync(DOCS).length);
    expect(report.manifest).toMatchObject({ metric: "inner_product", index: { type: "flat" }, chunking: { size: 128, overlap: 16 } });
    expect(report.manifest.embedding.model).toBe("sentence-transformers/all-MiniLM-L6-v2");
    for (const file of ["manifest.json", "index.faiss", "chunks.sqlite"]) expect(fs.existsSync(path.join(out, file))).toBe(true);

    const store = await KnowledgeStore.open(out, config);
    try {
      for (const mode of ["dense", "lexical", "hybrid"] as const) {
        const hits = await store.retrieve("How are match scores between 0.8 and 1.0 described?", { k: 5, mode });
        expect(hits).toHaveLength(5);
        expect(hits.map((hit) => hit.source), mode).toContain("rubric-match-scoring.md");
        for (const hit of hits) expect(hit.text.length).toBeGreaterThan(0);
      }
      const exact = await store.retrieve("SAP FICO", { k: 3, mode: "lexical" });
      expect(exact[0]!.text).toMatch(/SAP FICO/);
      expect(await store.retrieve("§§§ ???", { k: 3, mode: "lexical" })).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("re-embeds only new or changed files and drops deleted ones", async () => {
    const docs = copyDocs(["role-backend-engineer.md", "role-devops-sre.md", "fair-hiring-policy.md"]);
    const out = path.join(tempDir(), "store");
    const first = await buildStore({ docsDir: docs, outputDir: out, config });
    expect(first.files.added).toHaveLength(3);
    fs.appendFileSync(path.join(docs, "role-devops-sre.md"), "\n\n## On-call\n\nThe rotation is one week in six, with Terraform drills.\n");
    fs.rmSync(path.join(docs, "fair-hiring-policy.md"));
    fs.copyFileSync(path.join(DOCS, "skills-taxonomy.md"), path.join(docs, "skills-taxonomy.md"));
    const second = await buildStore({ docsDir: docs, outputDir: out, config });
    expect(second.files).toEqual({
      added: ["skills-taxonomy.md"],
      changed: ["role-devops-sre.md"],
      unchanged: ["role-backend-engineer.md"],
      removed: ["fair-hiring-policy.md"],
    });
    const store = await KnowledgeStore.open(out, config);
    try {
      expect((await store.retrieve("on-call rotation Terraform drills", { k: 1, mode: "hybrid" }))[0]!.source).toBe("role-devops-sre.md");
      const sources = new Set((await store.retrieve("equal opportunity protected attributes", { k: 20, mode: "lexical" })).map((hit) => hit.source));
      expect(sources.has("fair-hiring-policy.md")).toBe(false);
    } finally {
      await store.close();
    }
    const rebuilt = await buildStore({ docsDir: docs, outputDir: out, config, rebuild: true });
    expect(rebuilt.files.added).toHaveLength(3);
  });

  it("refuses a different embedding model, a corrupt index, an empty folder, and lists unreadable files", async () => {
    const docs = copyDocs(["role-data-scientist.md"]);
    fs.writeFileSync(path.join(docs, "scan.bin"), Buffer.from([0, 1, 2]));
    const out = path.join(tempDir(), "store");
    const report = await buildStore({ docsDir: docs, outputDir: out, config });
    expect(report.skipped).toEqual([{ path: "scan.bin", reason: "unsupported file type .bin" }]);

    const fp32 = { ...config, embeddings: { ...config.embeddings, dtype: "fp32" as const } };
    await expect(KnowledgeStore.open(out, fp32)).rejects.toThrow(/built with the embedding model sentence-transformers\/all-MiniLM-L6-v2 \(int8\), but queries would use sentence-transformers\/all-MiniLM-L6-v2 \(fp32\)/);
    const other = { ...config, embeddings: { ...config.embeddings, model: "BAAI/bge-small-en-v1.5" } };
    await expect(KnowledgeStore.open(out, other)).rejects.toThrow(/BAAI\/bge-small-en-v1.5/);

    fs.writeFileSync(path.join(out, "index.faiss"), "not an index");
    await expect(KnowledgeStore.open(out, config)).rejects.toThrow(/cannot be used[\s\S]*/);
    await expect(KnowledgeStore.open(out, config)).rejects.toMatchObject({ hint: expect.stringContaining("--rebuild") });
    await expect(KnowledgeStore.open(path.join(tempDir(), "none"), config)).rejects.toThrow(/no knowledge store/);
    await expect(buildStore({ docsDir: tempDir(), outputDir: path.join(tempDir(), "s"), config })).rejects.toThrow(/no readable text/);
  });

  it("indexes PDF and DOCX resumes beside Markdown, with headings and offsets into the extracted text", async () => {
    const docs = copyDocs(["role-financial-accountant.md"]);
    fs.mkdirSync(path.join(docs, "resumes"));
    for (const name of ["resume-priya-raman.pdf", "resume-tomasz-nowak.docx"]) fs.copyFileSync(path.join(FIXTURES, name), path.join(docs, "resumes", name));
    fs.writeFileSync(path.join(docs, "resumes", "broken.pdf"), "%PDF-1.4 truncated");
    const out = path.join(tempDir(), "store");
    const report = await buildStore({ docsDir: docs, outputDir: out, config });
    expect(report.files.added).toEqual(["resumes/resume-priya-raman.pdf", "resumes/resume-tomasz-nowak.docx", "role-financial-accountant.md"]);
    expect(report.skipped).toEqual([{ path: "resumes/broken.pdf", reason: expect.stringMatching(/^not a readable PDF/) }]);
    const store = await KnowledgeStore.open(out, config);
    try {
      const [docx] = await store.retrieve("F110 payment run duplicate payments", { k: 1, mode: "hybrid" });
      expect(docx).toMatchObject({ source: "resumes/resume-tomasz-nowak.docx", heading: "Experience" });
      const [pdf] = await store.retrieve("Kubernetes Administrator certification CKA", { k: 1, mode: "lexical" });
      expect(pdf!.source).toBe("resumes/resume-priya-raman.pdf");
      // Offsets point into the extracted text of the document.
      const { documentText } = await import("./documents.js");
      const text = await documentText(fs.readFileSync(path.join(docs, "resumes", "resume-priya-raman.pdf")), ".pdf");
      expect(text.slice(pdf!.start, pdf!.end)).toBe(pdf!.text);
    } finally {
      await store.close();
    }
  });

  it("builds an HNSW index when asked or above hnsw_above, and refuses a factory string faiss cannot build", async () => {
    const docs = copyDocs(["role-devops-sre.md", "role-registered-nurse.md", "skills-taxonomy.md"]);
    const withIndex = (index: string, extra: Partial<AtsConfig["rag"]> = {}): AtsConfig => ({ ...config, rag: { ...config.rag, index, ...extra } });
    const hnswDir = path.join(tempDir(), "hnsw");
    expect((await buildStore({ docsDir: docs, outputDir: hnswDir, config: withIndex("hnsw") })).manifest.index).toEqual({ type: "hnsw", factory: "HNSW32,Flat" });
    const auto = await buildStore({ docsDir: docs, outputDir: path.join(tempDir(), "auto"), config: withIndex("auto", { hnsw_above: 5 }) });
    expect(auto.manifest.index.type).toBe("hnsw");
    const customDir = path.join(tempDir(), "custom");
    expect((await buildStore({ docsDir: docs, outputDir: customDir, config: withIndex("HNSW16,Flat") })).manifest.index).toEqual({ type: "custom", factory: "HNSW16,Flat" });
    for (const dir of [hnswDir, customDir]) {
      const store = await KnowledgeStore.open(dir, config);
      try {
        const hits = await store.retrieve("NCLEX registered nurse licence", { k: 3, mode: "dense" });
        expect(hits).toHaveLength(3);
        expect(hits[0]!.source).toBe("role-registered-nurse.md");
      } finally {
        await store.close();
      }
    }
    await expect(buildStore({ docsDir: docs, outputDir: path.join(tempDir(), "bad"), config: withIndex("HNSWx,Flat") })).rejects.toThrow(/rag.index "HNSWx,Flat" is not a FAISS index/);
    await expect(buildStore({ docsDir: docs, outputDir: path.join(tempDir(), "ivf"), config: withIndex("IVF4096,Flat") })).rejects.toThrow(/cannot build the FAISS index "IVF4096,Flat" from \d+ vectors/);
  });

  it("clamps a chunk size above the embedder's limit, and says so", async () => {
    const docs = copyDocs(["interview-guidelines.md"]);
    const warnings: string[] = [];
    const big = { ...config, rag: { ...config.rag, chunk_size: 512, chunk_overlap: 50 } };
    const report = await buildStore({ docsDir: docs, outputDir: path.join(tempDir(), "s"), config: big, onWarning: (w) => warnings.push(w) });
    expect(report.manifest.chunking).toEqual({ size: 256, overlap: 50, requested_size: 512 });
    expect(warnings[0]).toContain("chunk size 512 is above the embedder's 256-token limit; using 256");
  });
});
