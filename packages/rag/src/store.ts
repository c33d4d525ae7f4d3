import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import {
  abandonBuild,
  commitBuild,
  InputError,
  RunError,
  silentProgress,
  startBuild,
  throwIfAborted,
  type AtsConfig,
  type ProgressSink,
  type StagedBuild,
} from "@ats-lora/core";
import { Embedder, type EmbedderIdentity } from "@ats-lora/embeddings";
import { chunkText, type Chunk } from "./chunker.js";
import { DOCUMENT_TYPES, documentText } from "./documents.js";
import { addVectors, loadFaiss, trainVectors } from "./faiss.js";
import { CHUNKS_FILE, INDEX_FILE, MANIFEST_FILE, readBuildId, sha256File, VECTOR_STORE_KIND } from "./layout.js";

/** vector_store/manifest.json */
export interface StoreManifest {
  format_version: 1;
  embedding: EmbedderIdentity;
  metric: "inner_product";
  /** type: flat (exact), hnsw, or custom (any other faiss factory string given as rag.index). */
  index: { type: "flat" | "hnsw" | "custom"; factory: string };
  chunking: { size: number; overlap: number; requested_size: number };
  counts: { sources: number; chunks: number };
  docs_dir: string;
  /**
   * Unique to each build, and recorded inside chunks.sqlite too (its meta table), so that a reader can tell
   * the files of one build from another's. Absent in stores built before build ids: they still open.
   */
  build_id?: string;
  /** The sha256 of index.faiss as this build wrote it (absent in stores built before build ids). */
  index_sha256?: string;
}

export interface BuildStoreOptions {
  docsDir: string;
  outputDir: string;
  config: AtsConfig;
  /** Start over instead of reusing unchanged files' chunks and vectors. */
  rebuild?: boolean;
  embeddingCacheFile?: string;
  progress?: ProgressSink;
  onWarning?: (message: string) => void;
  /** Aborting stops the build at the next document or batch; the store is left as it was. */
  signal?: AbortSignal;
}

export interface BuildStoreReport {
  manifest: StoreManifest;
  files: { added: string[]; changed: string[]; unchanged: string[]; removed: string[] };
  skipped: Array<{ path: string; reason: string }>;
  embedded_chunks: number;
}

const READABLE = new Set<string>(DOCUMENT_TYPES);

interface StoredChunk extends Chunk {
  source: string;
  vector: Buffer;
}

/**
 * Builds (or updates) the knowledge store: documents chunked by the embedder's tokens, embedded, indexed with
 * FAISS (exact inner product on normalised vectors; HNSW above rag.hnsw_above or as rag.index says), chunk text and metadata in SQLite with
 * an FTS5 table for lexical search. Only new or changed files are embedded again. The new store is written
 * beside the old one and swapped in (@ats-lora/core's build folders), so a crash never leaves half a store;
 * an output folder that holds anything but an earlier store is refused, never replaced.
 */
export async function buildStore(options: BuildStoreOptions): Promise<BuildStoreReport> {
  const docsDir = path.resolve(options.docsDir);
  if (!fs.existsSync(docsDir) || !fs.statSync(docsDir).isDirectory()) {
    throw new InputError(`--docs ${options.docsDir} is not a folder`, { hint: "pass the folder of your knowledge base, e.g. --docs data/ats_docs" });
  }
  const outputDir = path.resolve(options.outputDir);
  checkSeparate(docsDir, outputDir);
  // Before any work: refuses an output folder that holds anything but an earlier store, and puts back a
  // store that a killed run left hidden.
  const build = startBuild(outputDir, VECTOR_STORE_KIND);
  try {
    const report = await buildInto(build, docsDir, options);
    try {
      commitBuild(build);
    } catch (error) {
      throw error instanceof InputError || error instanceof RunError
        ? error
        : new RunError(`cannot put the new store in place of ${outputDir}: ${(error as Error).message}`, { cause: error, hint: `the folder ${path.dirname(outputDir)} must be writable` });
    }
    return report;
  } catch (error) {
    abandonBuild(build);
    throw error;
  }
}

/** The documents and the store must not overlap: a rebuild replaces the whole output folder. */
function checkSeparate(docsDir: string, outputDir: string): void {
  const docs = realPath(docsDir);
  const output = realPath(outputDir);
  const hint = "write the store to a folder of its own, outside the documents, e.g. --output vector_store";
  if (docs === output) {
    throw new InputError(`--docs ${docsDir} and --output ${outputDir} are the same folder: building the store there would replace the documents`, { hint });
  }
  if (isInside(docs, output)) {
    throw new InputError(`--docs ${docsDir} is inside --output ${outputDir}: building the store there would replace the documents`, { hint });
  }
  if (isInside(output, docs)) {
    throw new InputError(`--output ${outputDir} is inside --docs ${docsDir}: the store's own files would be read as documents`, { hint });
  }
}

/** The path with symbolic links resolved as far as it exists (the output folder may not exist yet). */
function realPath(file: string): string {
  const rest: string[] = [];
  let current = file;
  for (;;) {
    try {
      return path.join(fs.realpathSync(current), ...rest.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return file;
      rest.push(path.basename(current));
      current = parent;
    }
  }
}

function isInside(inner: string, outer: string): boolean {
  const relative = path.relative(outer, inner);
  return relative !== "" && relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
}

async function buildInto(build: StagedBuild, docsDir: string, options: BuildStoreOptions): Promise<BuildStoreReport> {
  const warn = options.onWarning ?? (() => undefined);
  const stopIfAborted = (): void => throwIfAborted(options.signal, "rag build", `the store ${build.target} is left as it was`);
  const embedder = await Embedder.fromConfig(options.config, { cacheFile: options.embeddingCacheFile });
  try {
    const requested = options.config.rag.chunk_size;
    const size = Math.min(requested, embedder.maxSequenceLength);
    if (size < requested) {
      warn(`chunk size ${requested} is above the embedder's ${embedder.maxSequenceLength}-token limit; using ${size} (longer chunks would be truncated silently)`);
    }
    const overlap = Math.min(options.config.rag.chunk_overlap, Math.floor(size / 2));

    const previous = options.rebuild ? undefined : readPrevious(build.target, embedder.identity, { size, overlap });
    const report: BuildStoreReport = {
      manifest: undefined as unknown as StoreManifest,
      files: { added: [], changed: [], unchanged: [], removed: [] },
      skipped: [],
      embedded_chunks: 0,
    };
    const chunks: StoredChunk[] = [];
    const fileHashes = new Map<string, string>();
    const toEmbed: Array<{ source: string; chunks: Chunk[] }> = [];
    const seen = new Set<string>();
    // The earlier store stays open while its unchanged chunks are copied, and is closed on every way out.
    try {
      for (const file of walk(docsDir)) {
        stopIfAborted();
        const relative = path.relative(docsDir, file);
        const extension = path.extname(file).toLowerCase();
        if (!READABLE.has(extension)) {
          report.skipped.push({ path: relative, reason: `unsupported file type ${extension || "(none)"}` });
          continue;
        }
        let bytes: Buffer;
        let text: string;
        try {
          bytes = fs.readFileSync(file);
          text = await documentText(bytes, extension);
        } catch (error) {
          report.skipped.push({ path: relative, reason: (error as Error).message });
          continue;
        }
        const hash = crypto.createHash("sha256").update(bytes).digest("hex");
        seen.add(relative);
        fileHashes.set(relative, hash);
        const before = previous?.sources.get(relative);
        if (before && before.hash === hash) {
          report.files.unchanged.push(relative);
          chunks.push(...previous!.chunksOf(relative));
          continue;
        }
        (before ? report.files.changed : report.files.added).push(relative);
        toEmbed.push({ source: relative, chunks: chunkText(text, { size, overlap, countTokens: (t) => embedder.countTokens(t) }) });
        previous?.sources.delete(relative);
      }
      report.files.removed = previous ? [...previous.sources.keys()].filter((source) => !seen.has(source)).sort() : [];
    } finally {
      previous?.close();
    }

    const texts = toEmbed.flatMap((file) => file.chunks.map((chunk) => chunk.text));
    const progress = options.progress ?? silentProgress;
    progress.start(texts.length, "embed");
    const embedded = await embedder.embed(texts, ({ done }) => {
      stopIfAborted();
      progress.update(done);
    }).finally(() => progress.stop());
    report.embedded_chunks = embedded.computed;
    let position = 0;
    for (const file of toEmbed) {
      for (const chunk of file.chunks) {
        const vector = embedded.vectors[position++]!;
        chunks.push({ ...chunk, source: file.source, vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength) });
      }
    }
    chunks.sort((a, b) => a.source.localeCompare(b.source) || a.start - b.start);
    if (chunks.length === 0) {
      throw new InputError(`no readable text in ${options.docsDir}`, {
        hint: `add documents of these types: ${DOCUMENT_TYPES.join(", ")}`,
        details: report.skipped.map((skip) => `${skip.path}: ${skip.reason}`),
      });
    }

    const manifest: StoreManifest = {
      format_version: 1,
      embedding: embedder.identity,
      metric: "inner_product",
      index: chooseIndex(options.config.rag.index, chunks.length, options.config.rag.hnsw_above),
      chunking: { size, overlap, requested_size: requested },
      counts: { sources: new Set(chunks.map((chunk) => chunk.source)).size, chunks: chunks.length },
      docs_dir: docsDir,
      build_id: crypto.randomUUID(),
    };
    stopIfAborted();
    writeStore(build, chunks, fileHashes, manifest);
    report.manifest = manifest;
    return report;
  } finally {
    await embedder.close();
  }
}

function* walk(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".")) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (entry.isFile()) yield full;
  }
}

interface Previous {
  sources: Map<string, { hash: string }>;
  chunksOf(source: string): StoredChunk[];
  close(): void;
}

/** The existing store's chunks and vectors, when it was built with the same model and chunking. */
function readPrevious(outputDir: string, identity: EmbedderIdentity, chunking: { size: number; overlap: number }): Previous | undefined {
  const manifestFile = path.join(outputDir, MANIFEST_FILE);
  if (!fs.existsSync(manifestFile)) return undefined;
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as StoreManifest;
    if (JSON.stringify(manifest.embedding) !== JSON.stringify(identity)) return undefined;
    if (manifest.chunking.size !== chunking.size || manifest.chunking.overlap !== chunking.overlap) return undefined;
    const db = new Database(path.join(outputDir, CHUNKS_FILE), { readonly: true, fileMustExist: true });
    // Chunks of another build than the manifest describes (the folder changed meanwhile): not reused.
    if (readBuildId(db) !== manifest.build_id) {
      db.close();
      return undefined;
    }
    const sources = new Map(
      (db.prepare("SELECT path, hash FROM sources").all() as Array<{ path: string; hash: string }>).map((row) => [row.path, { hash: row.hash }]),
    );
    const select = db.prepare("SELECT source, start, end, heading, text, tokens, vector FROM chunks WHERE source = ? ORDER BY start");
    return {
      sources,
      chunksOf: (source) => select.all(source) as StoredChunk[],
      close: () => db.close(),
    };
  } catch {
    return undefined; // unreadable: rebuild from scratch
  }
}

/**
 * Writes the store into the build's staging folder: chunks.sqlite (with the build id in its meta table), the
 * index, and the manifest last (with the build id and the index's sha256), so that a reader can check that
 * the three files belong to one build.
 */
function writeStore(build: StagedBuild, chunks: StoredChunk[], fileHashes: Map<string, string>, manifest: StoreManifest): void {
  const { staging } = build;
  try {
    const db = new Database(path.join(staging, CHUNKS_FILE));
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      CREATE TABLE sources (path TEXT PRIMARY KEY, hash TEXT NOT NULL, chunks INTEGER NOT NULL) STRICT;
      CREATE TABLE chunks (
        id INTEGER PRIMARY KEY, source TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
        heading TEXT NOT NULL, text TEXT NOT NULL, tokens INTEGER NOT NULL, content_hash TEXT NOT NULL, vector BLOB NOT NULL
      ) STRICT;
      CREATE VIRTUAL TABLE chunks_fts USING fts5(text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61');
    `);
    const insert = db.prepare(
      "INSERT INTO chunks (id, source, start, end, heading, text, tokens, content_hash, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    const insertSource = db.prepare("INSERT INTO sources (path, hash, chunks) VALUES (?, ?, ?)");
    db.transaction(() => {
      db.prepare("INSERT INTO meta (key, value) VALUES ('build_id', ?)").run(manifest.build_id!);
      const perSource = new Map<string, number>();
      chunks.forEach((chunk, id) => {
        insert.run(id, chunk.source, chunk.start, chunk.end, chunk.heading, chunk.text, chunk.tokens, crypto.createHash("sha256").update(chunk.text).digest("hex"), chunk.vector);
        perSource.set(chunk.source, (perSource.get(chunk.source) ?? 0) + 1);
      });
      for (const [source, count] of perSource) insertSource.run(source, fileHashes.get(source)!, count);
      db.exec("INSERT INTO chunks_fts (rowid, text, heading) SELECT id, text, heading FROM chunks");
    })();
    db.close();
    // The FAISS index: label i is chunk id i.
    const dimension = manifest.embedding.dimension;
    const vectors = new Float32Array(chunks.length * dimension);
    const bytes = new Uint8Array(vectors.buffer);
    chunks.forEach((chunk, id) => bytes.set(chunk.vector, id * dimension * 4));
    writeIndex(path.join(staging, INDEX_FILE), manifest.index.factory, dimension, vectors);
    manifest.index_sha256 = sha256File(path.join(staging, INDEX_FILE));
    fs.writeFileSync(path.join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (error) {
    throw error instanceof InputError || error instanceof RunError ? error : new RunError(`cannot write the store ${build.target}: ${(error as Error).message}`, { cause: error });
  }
}

/** The index rag.index asks for: auto = exact search up to hnsw_above vectors, HNSW beyond. */
export function chooseIndex(setting: string, count: number, hnswAbove: number): StoreManifest["index"] {
  const flat = { type: "flat", factory: "Flat" } as const;
  const hnsw = { type: "hnsw", factory: "HNSW32,Flat" } as const;
  if (setting === "auto") return count > hnswAbove ? hnsw : flat;
  if (setting === "flat" || setting === "Flat") return flat;
  if (setting === "hnsw") return hnsw;
  return { type: "custom", factory: setting };
}

function writeIndex(file: string, factory: string, dimension: number, vectors: Float32Array): void {
  const faiss = loadFaiss();
  let index;
  try {
    index = faiss.Index.fromFactory(dimension, factory, faiss.MetricType.METRIC_INNER_PRODUCT);
  } catch (error) {
    throw new InputError(`rag.index "${factory}" is not a FAISS index faiss can build: ${(error as Error).message}`, {
      hint: "use auto, flat, hnsw, or a faiss factory string such as HNSW32,Flat or IVF64,Flat",
    });
  }
  try {
    // Factories with a coarse quantizer (IVF…, PQ…) learn it from the vectors first.
    if (!index.isTrained()) trainVectors(index, vectors);
    addVectors(index, vectors);
  } catch (error) {
    throw new InputError(`cannot build the FAISS index "${factory}" from ${vectors.length / dimension} vectors: ${(error as Error).message}`, {
      hint: "a trained index needs many more vectors than its lists or codes (e.g. IVF64 wants thousands); use flat or hnsw for a small store",
    });
  }
  index.write(file);
}

