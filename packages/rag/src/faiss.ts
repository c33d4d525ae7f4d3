import { createRequire } from "node:module";
import { RunError } from "@ats-lora/core";

/** The parts of faiss-node's API this package uses (with patches/faiss-node@0.5.1.patch applied). */
export interface FaissIndex {
  ntotal(): number;
  getDimension(): number;
  isTrained(): boolean;
  train(vectors: number[] | Float32Array): void;
  add(vectors: number[] | Float32Array): void;
  search(query: number[] | Float32Array, k: number): { distances: number[]; labels: number[] };
  write(file: string): void;
  /** Index parameters by name (faiss ParameterSpace), e.g. efSearch; only on indexes made by the factory. */
  setParameter?(name: string, value: number): void;
}

export interface FaissModule {
  IndexFlatIP: { new (dimension: number): FaissIndex; read(file: string): FaissIndex };
  Index: { fromFactory(dimension: number, description: string, metric: number): FaissIndex; read(file: string): FaissIndex };
  MetricType: { METRIC_INNER_PRODUCT: number; METRIC_L2: number };
}

let cached: { module: FaissModule; typedArrays: boolean } | undefined;

function load(): { module: FaissModule; typedArrays: boolean } {
  if (cached) return cached;
  let module: FaissModule;
  try {
    module = createRequire(import.meta.url)("faiss-node") as FaissModule;
  } catch (error) {
    throw new RunError(`faiss-node's native addon cannot be loaded: ${(error as Error).message.split("\n")[0]}`, {
      cause: error,
      hint: "run bash scripts/build-faiss-node.sh (it compiles faiss for this machine, or uses the prebuilt download or the system faiss)",
    });
  }
  // The patched addon takes Float32Arrays as they are; faiss-node's prebuilt binary only takes plain arrays.
  let typedArrays = true;
  try {
    new module.IndexFlatIP(1).add(new Float32Array([1]));
  } catch {
    typedArrays = false;
  }
  cached = { module, typedArrays };
  return cached;
}

/** faiss-node, loaded on first use, with a clear error when its native addon was never built. */
export function loadFaiss(): FaissModule {
  return load().module;
}

function input(vectors: Float32Array): Float32Array | number[] {
  return load().typedArrays ? vectors : Array.from(vectors);
}

/** Adds row-major vectors (n × dimension) to an index, without a per-number copy where the addon allows. */
export function addVectors(index: FaissIndex, vectors: Float32Array): void {
  index.add(input(vectors));
}

/** Trains an index that needs it (IVF, PQ) on row-major vectors. */
export function trainVectors(index: FaissIndex, vectors: Float32Array): void {
  index.train(input(vectors));
}

/** The k nearest stored vectors to one query: [label, score] pairs, best first, missing slots dropped. */
export function searchVector(index: FaissIndex, query: Float32Array, k: number): Array<[number, number]> {
  const result = index.search(input(query), k);
  return result.labels.map((label, i) => [label, result.distances[i]!] as [number, number]).filter(([label]) => label >= 0);
}
