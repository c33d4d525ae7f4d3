import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { addVectors, loadFaiss, searchVector } from "./faiss.js";

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

describe("the patched addon (patches/faiss-node@0.5.1.patch)", () => {
  it("takes Float32Array input with the same results as plain arrays, and sets efSearch by name", () => {
    const faiss = loadFaiss();
    const dimension = 16;
    const count = 500;
    const vectors = new Float32Array(count * dimension).map((_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.11));
    const typed = faiss.Index.fromFactory(dimension, "HNSW8,Flat", faiss.MetricType.METRIC_INNER_PRODUCT);
    const plain = faiss.Index.fromFactory(dimension, "HNSW8,Flat", faiss.MetricType.METRIC_INNER_PRODUCT);
    addVectors(typed, vectors);
    plain.add(Array.from(vectors));
    expect(typed.ntotal()).toBe(count);
    const query = vectors.slice(7 * dimension, 8 * dimension);
    expect(typed.search(query, 10)).toEqual(plain.search(Array.from(query), 10));
    expect(searchVector(typed, query, 3).map(([label]) => label)).toEqual(plain.search(Array.from(query), 3).labels);
    typed.setParameter!("efSearch", 200);
    expect(typed.search(query, 10).labels).toHaveLength(10);
    // faiss errors arrive as JavaScript errors, not a crashed process.
    expect(() => typed.setParameter!("noSuchParameter", 1)).toThrow(/noSuchParameter/);
    expect(() => typed.add(new Float32Array(dimension + 1))).toThrow(/array length/);
    expect(() => typed.search(new Float64Array(dimension) as unknown as Float32Array, 1)).toThrow(/Float32Array/);
  });
});
