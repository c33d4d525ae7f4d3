import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { InputError, RunError, type AtsConfig } from "@ats-lora/core";
import { Embedder, resolveModelSource } from "@ats-lora/embeddings";
import { loadFaiss, searchVector, type FaissIndex } from "./faiss.js";
import type { StoreManifest } from "./store.js";

export type RetrievalMode = "dense" | "lexical" | "hybrid";

export interface RetrievedChunk {
  rank: number;
  /** dense: inner product (cosine); lexical: −bm25 (higher is better); hybrid: reciprocal-rank-fusion score. */
  score: number;
  source: string;
  heading: string;
  start: number;
  end: number;
  text: string;
}

/** Reciprocal rank fusion's constant (Cormack et al.): damps the weight of the very first ranks. */
const RRF_K = 60;

/** An open knowledge store: query it with `retrieve`, then `close`. */
export class KnowledgeStore {
  private constructor(
    readonly dir: string,
    readonly manifest: StoreManifest,
    private readonly db: Database.Database,
    private readonly index: FaissIndex,
    private readonly embedder: Embedder,
  ) {}

  /**
   * Opens a store and the embedder it was built with. A store built with another embedding model than the
   * configured one is refused (the vectors would not be comparable); a missing or corrupt index asks for
   * --rebuild.
   */
  static async open(dir: string, config: AtsConfig): Promise<KnowledgeStore> {
    const manifestFile = path.join(dir, "manifest.json");
    if (!fs.existsSync(manifestFile)) {
      throw new InputError(`no knowledge store at ${dir}`, { hint: "build one: ats-lora rag build --docs DIR" });
    }
    let manifest: StoreManifest;
    try {
      manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as StoreManifest;
    } catch (error) {
      throw new RunError(`${manifestFile} is not valid JSON: the store is damaged`, { hint: "rebuild it: ats-lora rag build --docs DIR --rebuild", cause: error });
    }
    const wanted = { model: resolveModelSource(config.embeddings.model).modelId, dtype: config.embeddings.dtype };
    const builtWith = manifest.embedding;
    if (builtWith.dtype !== wanted.dtype || builtWith.model !== wanted.model) {
      throw new InputError(
        `the store ${dir} was built with the embedding model ${builtWith.model} (${builtWith.dtype}), but queries would use ${wanted.model} (${wanted.dtype})`,
        { hint: "query with the store's model (embeddings.model / embeddings.dtype), or rebuild the store with --rebuild" },
      );
    }
    let index: FaissIndex;
    try {
      const faiss = loadFaiss();
      const file = path.join(dir, "index.faiss");
      if (!fs.existsSync(file)) throw new Error("index.faiss is missing");
      index = faiss.Index.read(file);
      if (index.ntotal() !== manifest.counts.chunks || index.getDimension() !== builtWith.dimension) {
        throw new Error(`it holds ${index.ntotal()} vectors of ${index.getDimension()} dimensions, the manifest says ${manifest.counts.chunks} of ${builtWith.dimension}`);
      }
    } catch (error) {
      if (error instanceof RunError && /faiss-node/.test(error.message)) throw error;
      throw new RunError(`the FAISS index of ${dir} cannot be used: ${(error as Error).message}`, {
        hint: "rebuild the store: ats-lora rag build --docs DIR --rebuild",
        cause: error,
      });
    }
    if (/HNSW/.test(manifest.index.factory)) index.setParameter?.("efSearch", config.rag.ef_search);
    const db = new Database(path.join(dir, "chunks.sqlite"), { readonly: true, fileMustExist: true });
    const embedder = await Embedder.load({ model: config.embeddings.model, dtype: config.embeddings.dtype });
    return new KnowledgeStore(dir, manifest, db, index, embedder);
  }

  /** The k best chunks for a query: by meaning (dense), by words (lexical, BM25), or both fused (hybrid). */
  async retrieve(query: string, options: { k: number; mode: RetrievalMode }): Promise<RetrievedChunk[]> {
    const k = Math.max(1, Math.min(options.k, this.manifest.counts.chunks));
    const pool = Math.min(this.manifest.counts.chunks, Math.max(k * 4, 20));
    if (options.mode === "dense") return this.rows((await this.dense(query, k)).map(([id, score]) => [id, score]));
    if (options.mode === "lexical") return this.rows(this.lexical(query, k));
    const fused = new Map<number, number>();
    for (const ranking of [await this.dense(query, pool), this.lexical(query, pool)]) {
      ranking.forEach(([id], rank) => fused.set(id, (fused.get(id) ?? 0) + 1 / (RRF_K + rank + 1)));
    }
    const best = [...fused.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, k);
    return this.rows(best);
  }

  /** The source paths the store holds (relative to the folder it was built from). */
  sources(): Set<string> {
    return new Set((this.db.prepare("SELECT path FROM sources").all() as Array<{ path: string }>).map((row) => row.path));
  }

  async close(): Promise<void> {
    this.db.close();
    await this.embedder.close();
  }

  private async dense(query: string, k: number): Promise<Array<[number, number]>> {
    const { vectors } = await this.embedder.embed([query]);
    return searchVector(this.index, vectors[0]!, k);
  }

  /** BM25 over FTS5, the query's words OR-ed (each quoted, so no FTS5 syntax leaks in). */
  private lexical(query: string, k: number): Array<[number, number]> {
    const words = query.match(/[\p{L}\p{N}]+/gu) ?? [];
    if (words.length === 0) return [];
    const match = words.map((word) => `"${word}"`).join(" OR ");
    const rows = this.db
      .prepare<[string, number], { id: number; rank: number }>("SELECT rowid AS id, bm25(chunks_fts) AS rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?")
      .all(match, k);
    return rows.map((row) => [row.id, -row.rank]);
  }

  private rows(ranked: Array<[number, number]>): RetrievedChunk[] {
    const select = this.db.prepare<[number], { source: string; heading: string; start: number; end: number; text: string }>(
      "SELECT source, heading, start, end, text FROM chunks WHERE id = ?",
    );
    return ranked.map(([id, score], rank) => ({ rank: rank + 1, score: Math.round(score * 1e6) / 1e6, ...select.get(id)! }));
  }
}

/** A retrieved chunk as a prompt passage: where it comes from, then its text. */
export function passageText(hit: RetrievedChunk): string {
  return `[${hit.source}${hit.heading ? ` › ${hit.heading}` : ""}]\n${hit.text}`;
}

/** Prompt passages from a store, for build-db --rag and eval --rag (the same k and mode for both). */
export function passageRetriever(
  store: KnowledgeStore,
  options: { k: number; mode: RetrievalMode },
): { describe: { store: string; top_k: number; mode: RetrievalMode }; passages(query: string): Promise<string[]> } {
  return {
    describe: { store: path.resolve(store.dir), top_k: options.k, mode: options.mode },
    passages: async (query) => (await store.retrieve(query, options)).map(passageText),
  };
}
