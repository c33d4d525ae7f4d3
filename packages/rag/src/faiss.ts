import { createRequire } from "node:module";
import { RunError } from "@ats-lora/core";

/** The parts of faiss-node's API this package uses. */
export interface FaissIndex {
  ntotal(): number;
  getDimension(): number;
  add(vectors: number[]): void;
  search(query: number[], k: number): { distances: number[]; labels: number[] };
  write(file: string): void;
}

export interface FaissModule {
  IndexFlatIP: { new (dimension: number): FaissIndex; read(file: string): FaissIndex };
  Index: { fromFactory(dimension: number, description: string, metric: number): FaissIndex; read(file: string): FaissIndex };
  MetricType: { METRIC_INNER_PRODUCT: number; METRIC_L2: number };
}

let cached: FaissModule | undefined;

/** faiss-node, loaded on first use, with a clear error when its native addon was never built. */
export function loadFaiss(): FaissModule {
  if (cached) return cached;
  try {
    cached = createRequire(import.meta.url)("faiss-node") as FaissModule;
  } catch (error) {
    throw new RunError(`faiss-node's native addon cannot be loaded: ${(error as Error).message.split("\n")[0]}`, {
      cause: error,
      hint: "run bash scripts/build-faiss-node.sh (it needs the prebuilt download or the system faiss: apt-get install libfaiss-dev)",
    });
  }
  return cached;
}
