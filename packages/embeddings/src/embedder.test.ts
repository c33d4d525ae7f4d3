import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Embedder } from "./embedder.js";
import { resolveModelSource } from "./model-source.js";
import { cosine } from "./similarity.js";

// Vectors from Python sentence-transformers on the same weights (scripts/reference-embeddings.py).
const reference = JSON.parse(
  fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "test-fixtures", "minilm-reference.json"), "utf8"),
) as { sentences: string[]; vectors: number[][]; max_seq_length: number };

describe("Embedder (all-MiniLM-L6-v2 assembled offline, onnxruntime-node)", () => {
  it("resolves the default hub id to the assembled local copy", () => {
    const source = resolveModelSource("sentence-transformers/all-MiniLM-L6-v2");
    expect(source.kind).toBe("folder");
    expect(resolveModelSource("someone/other-model").kind).toBe("hub");
  });

  for (const [dtype, floor] of [["fp32", 0.99], ["int8", 0.97]] as const) {
    it(`agrees with sentence-transformers at ${dtype} (cosine ≥ ${floor} on every sentence)`, async () => {
      const embedder = await Embedder.load({ dtype, batchSize: 5 });
      expect(embedder.identity).toEqual({ model: "sentence-transformers/all-MiniLM-L6-v2", dtype, dimension: 384, max_seq_length: reference.max_seq_length });
      const result = await embedder.embed(reference.sentences);
      const similarities = result.vectors.map((vector, i) => cosine(vector, Float32Array.from(reference.vectors[i]!)));
      for (const [i, similarity] of similarities.entries()) expect(similarity, reference.sentences[i]!.slice(0, 40)).toBeGreaterThanOrEqual(floor);
      for (const vector of result.vectors) expect(Math.hypot(...vector)).toBeCloseTo(1, 4);
      // Exactly the one sentence over 256 tokens was cut, and it is reported.
      expect(result.truncatedIndices).toEqual([reference.sentences.length - 1]);
      // Distinct meanings stay apart; the two skill sentences are closer to each other than to pizza.
      expect(cosine(result.vectors[0]!, result.vectors[9]!)).toBeGreaterThan(cosine(result.vectors[0]!, result.vectors[10]!));
      await embedder.close();
    });
  }

  it("caches vectors on disk by model and text, so only new text is embedded again", async () => {
    const cacheFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-emb-")), "embeddings.sqlite");
    const first = await Embedder.load({ cacheFile });
    const a = await first.embed(["alpha resume", "beta resume"]);
    expect(a).toMatchObject({ cached: 0, computed: 2 });
    await first.close();
    const second = await Embedder.load({ cacheFile });
    const b = await second.embed(["beta resume", "gamma resume", "alpha resume"]);
    expect(b).toMatchObject({ cached: 2, computed: 1 });
    expect(Array.from(b.vectors[2]!)).toEqual(Array.from(a.vectors[0]!));
    await second.close();
    // Another dtype is another model: nothing is reused across them.
    const fp32 = await Embedder.load({ cacheFile, dtype: "fp32" });
    expect(await fp32.embed(["alpha resume"])).toMatchObject({ cached: 0, computed: 1 });
    await fp32.close();
  });

  it("counts tokens with the model's tokenizer and names a folder without weights", async () => {
    const embedder = await Embedder.load();
    expect(embedder.countTokens("Kubernetes")).toBeGreaterThan(0);
    expect(embedder.countTokens("one two three")).toBe(3);
    await embedder.close();
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "ats-emb-empty-"));
    await expect(Embedder.load({ model: empty })).rejects.toThrow(/lacks tokenizer.json, config.json, onnx\/model_quantized.onnx/);
  });
});
