import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { InputError, isProcessAlive, recoverInterruptedBuilds, RunError, type AtsConfig } from "@ats-lora/core";
import { Embedder, resolveModelSource } from "@ats-lora/embeddings";
import { loadFaiss, searchVector, type FaissIndex } from "./faiss.js";
import { CHUNKS_FILE, INDEX_FILE, MANIFEST_FILE, readBuildId, sha256File, VECTOR_STORE_KIND } from "./layout.js";
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

export interface OpenStoreOptions {
  /**
   * For tests: called after each step of opening one build of the store (attempt counts from 1), so that a
   * test can change the folder between the steps.
   */
  onOpenStep?: (step: "manifest" | "chunks" | "index", attempt: number) => void;
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
   *
   * The manifest, chunks.sqlite and the index are opened as one build: the build id in the manifest must be
   * the one inside chunks.sqlite, the index must be the file the manifest's sha256 names, and the manifest must
   * still be the same after all three are open. A store replaced by `rag build` while it is being opened is
   * tried again a few times, then refused ("changed while it was being opened"); versions are never mixed.
   * A store that a killed build left hidden beside its folder is put back first.
   */
  static async open(dir: string, config: AtsConfig, options: OpenStoreOptions = {}): Promise<KnowledgeStore> {
    const wanted = { model: resolveModelSource(config.embeddings.model).modelId, dtype: config.embeddings.dtype };
    const { manifest, db, index } = await openOneBuild(dir, wanted, options);
    if (/HNSW/.test(manifest.index.factory)) index.setParameter?.("efSearch", config.rag.ef_search);
    let embedder: Embedder;
    try {
      embedder = await Embedder.fromConfig(config);
    } catch (error) {
      db.close();
      throw error;
    }
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

/** Tries to open one consistent build this many times while `rag build` keeps replacing the store. */
const OPEN_ATTEMPTS = 5;
/** The wait before the second try; doubled for each further one (25 + 50 + 100 + 200 ms in all). */
const OPEN_BACKOFF_MS = 25;

interface OpenBuild {
  manifest: StoreManifest;
  db: Database.Database;
  index: FaissIndex;
}

async function openOneBuild(dir: string, wanted: { model: string; dtype: string }, options: OpenStoreOptions): Promise<OpenBuild> {
  let changed = "";
  for (let attempt = 1; attempt <= OPEN_ATTEMPTS; attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, OPEN_BACKOFF_MS * 2 ** (attempt - 2)));
    const result = tryOpenBuild(dir, wanted, options, attempt);
    if ("manifest" in result) return result;
    changed = result.changed;
  }
  throw new RunError(`the store ${dir} changed while it was being opened (${changed}); try again`, {
    hint: "another ats-lora rag build is replacing it: run this again once that build has finished",
  });
}

/** One build of the store, or why the folder changed under the reader (then the caller tries again). */
function tryOpenBuild(dir: string, wanted: { model: string; dtype: string }, options: OpenStoreOptions, attempt: number): OpenBuild | { changed: string } {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  let text = readText(manifestFile);
  if (text === undefined && !fs.existsSync(dir)) {
    // A build killed between the two renames of its swap leaves the store hidden beside its folder.
    try {
      recoverInterruptedBuilds(dir, VECTOR_STORE_KIND);
    } catch {
      // not ours to fix here (e.g. a read-only parent folder): the store is reported missing below
    }
    text = readText(manifestFile);
  }
  if (text === undefined) {
    const aside = movedAside(dir);
    if (aside.some((folder) => folder.alive)) return { changed: "it was being replaced" };
    const left = aside[0];
    throw new InputError(`no knowledge store at ${dir}`, {
      hint: left
        ? `${left.file} may hold the store that a killed rag build moved aside: rename it to ${path.resolve(dir)}, or build a new one: ats-lora rag build --docs DIR`
        : "build one: ats-lora rag build --docs DIR",
    });
  }
  let manifest: StoreManifest;
  try {
    manifest = JSON.parse(text) as StoreManifest;
  } catch (error) {
    throw new RunError(`${manifestFile} is not valid JSON: the store is damaged`, { hint: "rebuild it: ats-lora rag build --docs DIR --rebuild", cause: error });
  }
  const builtWith = manifest.embedding;
  if (builtWith.dtype !== wanted.dtype || builtWith.model !== wanted.model) {
    throw new InputError(
      `the store ${dir} was built with the embedding model ${builtWith.model} (${builtWith.dtype}), but queries would use ${wanted.model} (${wanted.dtype})`,
      { hint: "query with the store's model (embeddings.model / embeddings.dtype), or rebuild the store with --rebuild" },
    );
  }
  options.onOpenStep?.("manifest", attempt);
  /** Whether the folder now holds another build than the manifest read first. */
  const moved = () => readText(manifestFile) !== text;
  const rebuild = "rebuild the store: ats-lora rag build --docs DIR --rebuild";

  let db: Database.Database;
  let buildId: string | undefined;
  try {
    db = new Database(path.join(dir, CHUNKS_FILE), { readonly: true, fileMustExist: true });
    try {
      buildId = readBuildId(db);
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    if (moved()) return { changed: `${CHUNKS_FILE} was replaced` };
    throw new RunError(`${path.join(dir, CHUNKS_FILE)} cannot be read: ${(error as Error).message}`, { hint: rebuild, cause: error });
  }
  if (buildId !== manifest.build_id) {
    db.close();
    if (moved()) return { changed: `${CHUNKS_FILE} was replaced` };
    throw new RunError(
      `${path.join(dir, CHUNKS_FILE)} belongs to another build (${buildId ?? "one without a build id"}) than ${MANIFEST_FILE} (${manifest.build_id ?? "one without a build id"}): the store is damaged`,
      { hint: rebuild },
    );
  }
  options.onOpenStep?.("chunks", attempt);

  let index: FaissIndex;
  try {
    const file = path.join(dir, INDEX_FILE);
    if (!fs.existsSync(file)) throw new Error(`${INDEX_FILE} is missing`);
    if (manifest.index_sha256 !== undefined && sha256File(file) !== manifest.index_sha256) {
      throw new Error(`${INDEX_FILE} is not the index this store's manifest was written with (its sha256 differs)`);
    }
    index = loadFaiss().Index.read(file);
    if (index.ntotal() !== manifest.counts.chunks || index.getDimension() !== builtWith.dimension) {
      throw new Error(`it holds ${index.ntotal()} vectors of ${index.getDimension()} dimensions, the manifest says ${manifest.counts.chunks} of ${builtWith.dimension}`);
    }
  } catch (error) {
    db.close();
    if (error instanceof RunError && /faiss-node/.test(error.message)) throw error;
    if (moved()) return { changed: `${INDEX_FILE} was replaced` };
    throw new RunError(`the FAISS index of ${dir} cannot be used: ${(error as Error).message}`, { hint: rebuild, cause: error });
  }
  options.onOpenStep?.("index", attempt);

  // The folder may have been replaced after the last file was opened: then this is not the build to use.
  if (moved()) {
    db.close();
    return { changed: `${MANIFEST_FILE} was replaced` };
  }
  return { manifest, db, index };
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The stores a `rag build` moved aside to swap its new one in ("previous" folders): while that build is alive
 * the swap is under way; one left by a build that died is put back by recoverInterruptedBuilds when it carries
 * a build marker, and only reported here when it does not.
 */
function movedAside(dir: string): Array<{ file: string; alive: boolean }> {
  const resolved = path.resolve(dir);
  const prefix = `.${path.basename(resolved)}.previous-`;
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(resolved));
  } catch {
    return [];
  }
  return names
    .filter((name) => name.startsWith(prefix))
    .map((name) => ({ file: path.join(path.dirname(resolved), name), alive: isProcessAlive(Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1])) }));
}

