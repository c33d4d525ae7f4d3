import type Database from "better-sqlite3";
import type { BuildFolderKind } from "@ats-lora/core";

/** The files of a vector store folder (README "rag in detail"). */
export const MANIFEST_FILE = "manifest.json";
export const INDEX_FILE = "index.faiss";
export const CHUNKS_FILE = "chunks.sqlite";

/**
 * The vector store as @ats-lora/core's build folders know it: what a rebuild may replace. SQLite's journal,
 * WAL and shared-memory files are listed too: they can sit beside chunks.sqlite when a store was opened by
 * another SQLite tool.
 */
export const VECTOR_STORE_KIND: BuildFolderKind = {
  name: "vector store",
  option: "--output",
  entries: [MANIFEST_FILE, INDEX_FILE, CHUNKS_FILE, `${CHUNKS_FILE}-journal`, `${CHUNKS_FILE}-wal`, `${CHUNKS_FILE}-shm`],
};

/** The build id recorded inside chunks.sqlite (its meta table); undefined for a store built before build ids. */
export function readBuildId(db: Database.Database): string | undefined {
  const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (table === undefined) return undefined;
  const row = db.prepare("SELECT value FROM meta WHERE key = 'build_id'").get() as { value: string } | undefined;
  return row?.value;
}

export { sha256File } from "@ats-lora/core";
