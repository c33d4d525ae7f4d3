import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadFaiss } from "./faiss.js";

describe("faiss-node (the native addon built by scripts/build-faiss-node.sh)", () => {
  it("finds exact nearest neighbours by inner product, and round-trips an index file", () => {
    const faiss = loadFaiss();
    const dimension = 8;
    const index = new faiss.IndexFlatIP(dimension);
    const vectors: number[] = [];
    for (let i = 0; i < 100; i += 1) for (let d = 0; d < dimension; d += 1) vectors.push(Math.sin(i * 7 + d * 3));
    index.add(vectors);
    expect(index.ntotal()).toBe(100);
    const query = vectors.slice(42 * dimension, 43 * dimension);
    // The exact answer, computed here.
    const scores = Array.from({ length: 100 }, (_, i) => query.reduce((sum, value, d) => sum + value * vectors[i * dimension + d]!, 0));
    const expected = scores.map((score, i) => [score, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([, i]) => i);
    const result = index.search(query, 5);
    expect(result.labels).toEqual(expected);
    expect(result.distances[0]).toBeCloseTo(scores[expected[0]!]!, 4);

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-faiss-")), "index.faiss");
    index.write(file);
    expect(faiss.IndexFlatIP.read(file).search(query, 5).labels).toEqual(expected);
  });

  it("builds an HNSW index from a factory string", () => {
    const faiss = loadFaiss();
    const index = faiss.Index.fromFactory(4, "HNSW32", faiss.MetricType.METRIC_INNER_PRODUCT);
    index.add([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    expect(index.search([0, 1, 0, 0], 1).labels).toEqual([1]);
  });
});
