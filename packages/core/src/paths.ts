import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The runtime folders of one working directory (DESIGN.md layout). */
export interface WorkdirPaths {
  workdir: string;
  feedbackDb: string;
  feedbackSqlite: string;
  trainingPairs: string;
  vectorStore: string;
  models: string;
  /** Derived data safe to delete (the embeddings cache). */
  cache: string;
  /** The embedder's on-disk cache of vectors, shared by build-db, rag and eval. */
  embeddingCache: string;
}

export function workdirPaths(workdir: string): WorkdirPaths {
  const root = path.resolve(workdir);
  const feedbackDb = path.join(root, "feedback_db");
  return {
    workdir: root,
    feedbackDb,
    feedbackSqlite: path.join(feedbackDb, "feedback.sqlite"),
    trainingPairs: path.join(feedbackDb, "training_pairs"),
    vectorStore: path.join(root, "vector_store"),
    models: path.join(root, "models"),
    cache: path.join(root, ".cache"),
    embeddingCache: path.join(root, ".cache", "embeddings.sqlite"),
  };
}

/**
 * The installation's root (the monorepo checkout): where configs/ and data/ live. Resolved from this file's
 * location, which is packages/core/{src,dist}/paths.{ts,js} in both the source and the built layout.
 */
export function installRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
}

export function defaultConfigPath(): string {
  return path.join(installRoot(), "configs", "default.yaml");
}

export function bundledDataDir(): string {
  return path.join(installRoot(), "data");
}

/**
 * Reserves models/PREFIXN with the next free N, atomically: mkdir of the new folder (not recursive) fails with
 * EEXIST when another run took that N first, and then the next N is tried.
 */
export function reserveModelFolder(models: string, prefix = "ats_lora_v"): string {
  fs.mkdirSync(models, { recursive: true });
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\d+)$`);
  let next = 1;
  for (const name of fs.readdirSync(models)) {
    const match = pattern.exec(name);
    if (match) next = Math.max(next, Number(match[1]) + 1);
  }
  for (;;) {
    const candidate = path.join(models, `${prefix}${next}`);
    try {
      fs.mkdirSync(candidate);
      return candidate;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      next += 1;
    }
  }
}
