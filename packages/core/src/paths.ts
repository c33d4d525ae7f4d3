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
