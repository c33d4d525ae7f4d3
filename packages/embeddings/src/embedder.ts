import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { RunError, type AtsConfig } from "@ats-lora/core";
import { EmbeddingCache } from "./cache.js";
import { hubCacheDir, readAssembled, resolveModelSource, type ModelSource } from "./model-source.js";

/** int8: dynamically quantized weights (onnx/model_quantized.onnx), faster; fp32: the exported weights. */
export type EmbedderDtype = "int8" | "fp32";

export interface EmbedderOptions {
  /** Hub id or local folder; default sentence-transformers/all-MiniLM-L6-v2. */
  model?: string;
  dtype?: EmbedderDtype;
  /** Texts per forward pass. */
  batchSize?: number;
  /** SQLite file of cached vectors; none when undefined. */
  cacheFile?: string;
}

export interface EmbedProgress {
  done: number;
  total: number;
}

export interface EmbedResult {
  /** One L2-normalised vector per input text, in input order. */
  vectors: Float32Array[];
  /** Inputs longer than the model's maximum sequence length, embedded from their first tokens only (cached or not). */
  truncated: number;
  /** Indices of the truncated inputs. */
  truncatedIndices: number[];
  /** Inputs answered from the cache, and embedded now. */
  cached: number;
  computed: number;
}

/** The model's identity: recorded in manifests, and compared before a store built with it is queried. */
export interface EmbedderIdentity {
  model: string;
  dtype: EmbedderDtype;
  dimension: number;
  max_seq_length: number;
}

export const DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2";

// transformers.js is loaded on first use: it pulls in onnxruntime-node.
type Transformers = typeof import("@huggingface/transformers");
type Tokenizer = Awaited<ReturnType<Transformers["AutoTokenizer"]["from_pretrained"]>>;
type Model = Awaited<ReturnType<Transformers["AutoModel"]["from_pretrained"]>>;

/**
 * A sentence embedder on transformers.js with onnxruntime-node on the CPU: tokenise (truncating to the
 * model's maximum sequence length, and counting what was truncated), run the ONNX model, mean-pool the token
 * vectors over the attention mask and L2-normalise, in batches; vectors are cached on disk by text hash.
 */
export class Embedder {
  private constructor(
    private readonly transformers: Transformers,
    private readonly tokenizer: Tokenizer,
    private readonly model: Model,
    readonly identity: EmbedderIdentity,
    private readonly batchSize: number,
    private readonly cache: EmbeddingCache | undefined,
  ) {}

  get dimension(): number {
    return this.identity.dimension;
  }

  get maxSequenceLength(): number {
    return this.identity.max_seq_length;
  }

  /** The embedder the configuration names (embeddings.model, dtype and batch_size). */
  static fromConfig(config: AtsConfig, options: { cacheFile?: string } = {}): Promise<Embedder> {
    const { model, dtype, batch_size: batchSize } = config.embeddings;
    return Embedder.load({ model, dtype, batchSize, cacheFile: options.cacheFile });
  }

  static async load(options: EmbedderOptions = {}): Promise<Embedder> {
    const modelArg = options.model ?? DEFAULT_EMBEDDING_MODEL;
    const dtype = options.dtype ?? "int8";
    const source = resolveModelSource(modelArg);
    const transformers = await import("@huggingface/transformers");
    const { env, AutoTokenizer, AutoModel, AutoConfig } = transformers;
    env.cacheDir = hubCacheDir();
    let id: string;
    const loadOptions: { local_files_only: boolean } = { local_files_only: false };
    if (source.kind === "folder") {
      checkFolder(source.folder, dtype);
      env.allowLocalModels = true;
      env.localModelPath = path.dirname(source.folder) + path.sep;
      id = path.basename(source.folder);
      loadOptions.local_files_only = true;
    } else {
      id = source.modelId;
    }

    let tokenizer: Tokenizer;
    let model: Model;
    let config: Record<string, unknown>;
    try {
      tokenizer = await AutoTokenizer.from_pretrained(id, loadOptions);
      config = (await AutoConfig.from_pretrained(id, loadOptions)) as unknown as Record<string, unknown>;
      model = await AutoModel.from_pretrained(id, {
        ...loadOptions,
        dtype: dtype === "int8" ? "q8" : "fp32",
        device: "cpu",
      });
    } catch (error) {
      throw new RunError(`cannot load the embedding model ${modelArg}: ${(error as Error).message}`, {
        cause: error,
        hint:
          source.kind === "hub"
            ? "pass a local model folder, or check the network and HF_TOKEN; the bundled model is assembled by scripts/setup.sh"
            : "the folder needs tokenizer.json, config.json and onnx/model.onnx (fp32) or onnx/model_quantized.onnx (int8)",
      });
    }

    const dimension = Number(config.hidden_size);
    const maxSeqLength = maxSequenceLength(source, tokenizer, config);
    const identity: EmbedderIdentity = { model: source.modelId, dtype, dimension, max_seq_length: maxSeqLength };
    const cache =
      options.cacheFile === undefined
        ? undefined
        : new EmbeddingCache(options.cacheFile, cacheKey(identity, source), dimension);
    return new Embedder(transformers, tokenizer, model, identity, options.batchSize ?? 32, cache);
  }

  /** Token count of a text under this model's tokenizer, without special tokens (for chunking). */
  countTokens(text: string): number {
    return this.tokenizer.encode(text, { add_special_tokens: false }).length;
  }

  /** Embeds texts in input order, from the cache where possible; reports progress per batch. */
  async embed(texts: readonly string[], onProgress?: (progress: EmbedProgress) => void): Promise<EmbedResult> {
    const vectors: Array<Float32Array | undefined> = new Array(texts.length);
    const pending: number[] = [];
    const truncatedIndices: number[] = [];
    texts.forEach((text, index) => {
      const hit = this.cache?.get(text);
      if (!hit) return void pending.push(index);
      vectors[index] = hit.vector;
      if (hit.truncated) truncatedIndices.push(index);
    });
    const cached = texts.length - pending.length;
    // Similar lengths in a batch waste less work on padding.
    pending.sort((a, b) => texts[a]!.length - texts[b]!.length);
    let done = cached;
    onProgress?.({ done, total: texts.length });
    for (let start = 0; start < pending.length; start += this.batchSize) {
      const batch = pending.slice(start, start + this.batchSize);
      const batchTexts = batch.map((index) => texts[index]!);
      const { vectors: batchVectors, truncated } = await this.embedBatch(batchTexts);
      batch.forEach((index, position) => (vectors[index] = batchVectors[position]));
      for (const position of truncated) truncatedIndices.push(batch[position]!);
      const cutShort = new Set(truncated);
      this.cache?.putMany(batchTexts.map((text, position) => ({ text, vector: batchVectors[position]!, truncated: cutShort.has(position) })));
      done += batch.length;
      onProgress?.({ done, total: texts.length });
    }
    truncatedIndices.sort((a, b) => a - b);
    return {
      vectors: vectors as Float32Array[],
      truncated: truncatedIndices.length,
      truncatedIndices,
      cached,
      computed: pending.length,
    };
  }

  private async embedBatch(texts: string[]): Promise<{ vectors: Float32Array[]; truncated: number[] }> {
    const maxLength = this.identity.max_seq_length;
    const inputs = this.tokenizer(texts, { padding: true, truncation: true, max_length: maxLength });
    const mask = inputs.attention_mask as InstanceType<Transformers["Tensor"]>;
    // Only inputs that filled the whole window can have been cut; tokenise those again in full to know.
    const lengths = rowSums(mask);
    const truncated: number[] = [];
    lengths.forEach((length, position) => {
      if (length >= maxLength && this.tokenizer.encode(texts[position]!).length > maxLength) truncated.push(position);
    });
    const output = (await this.model(inputs)) as Record<string, InstanceType<Transformers["Tensor"]>>;
    const hidden = output.last_hidden_state ?? Object.values(output)[0]!;
    const pooled = this.transformers.mean_pooling(hidden, mask).normalize(2, -1);
    const data = pooled.data as Float32Array;
    const dimension = this.identity.dimension;
    const vectors = texts.map((_, row) => data.slice(row * dimension, (row + 1) * dimension));
    return { vectors, truncated };
  }

  async close(): Promise<void> {
    this.cache?.close();
    await (this.model as unknown as { dispose?: () => Promise<unknown> }).dispose?.();
  }
}

function rowSums(mask: { dims: number[]; data: ArrayLike<number | bigint> }): number[] {
  const [rows, cols] = mask.dims as [number, number];
  const sums: number[] = [];
  for (let row = 0; row < rows; row += 1) {
    let sum = 0;
    for (let col = 0; col < cols; col += 1) sum += Number(mask.data[row * cols + col]);
    sums.push(sum);
  }
  return sums;
}

/**
 * The length sentence-transformers uses: sentence_bert_config.json's max_seq_length where the model has one
 * (256 for all-MiniLM-L6-v2, below the tokenizer's 512), else the tokenizer's, capped by the position table.
 */
function maxSequenceLength(source: ModelSource, tokenizer: Tokenizer, config: Record<string, unknown>): number {
  const positions = Number(config.max_position_embeddings) || Infinity;
  if (source.kind === "folder") {
    const assembled = readAssembled(source.folder)?.max_seq_length;
    if (assembled) return Math.min(assembled, positions);
    try {
      const bert = JSON.parse(fs.readFileSync(path.join(source.folder, "sentence_bert_config.json"), "utf8")) as { max_seq_length?: number };
      if (bert.max_seq_length) return Math.min(bert.max_seq_length, positions);
    } catch {
      // not a sentence-transformers folder
    }
  }
  const fromTokenizer = Number((tokenizer as unknown as { model_max_length?: number }).model_max_length);
  const length = Math.min(Number.isFinite(fromTokenizer) && fromTokenizer > 0 ? fromTokenizer : 512, positions);
  return Number.isFinite(length) ? length : 512;
}

function checkFolder(folder: string, dtype: EmbedderDtype): void {
  const weights = path.join(folder, "onnx", dtype === "int8" ? "model_quantized.onnx" : "model.onnx");
  const missing = ["tokenizer.json", "config.json"].map((name) => path.join(folder, name)).concat(weights).filter((file) => !fs.existsSync(file));
  if (missing.length > 0) {
    throw new RunError(`the embedding model folder ${folder} lacks ${missing.map((file) => path.relative(folder, file)).join(", ")}`, {
      hint: dtype === "int8" ? "use --embedding-dtype fp32, or add the int8 weights as onnx/model_quantized.onnx" : "export the model to ONNX first",
    });
  }
}

/**
 * Vectors are only reused for the same weights: the key names the model, dtype and sequence length, and for a
 * local folder the ONNX file's path, size and modification time (a re-export starts a fresh cache).
 */
function cacheKey(identity: EmbedderIdentity, source: ModelSource): string {
  let weights = "hub";
  if (source.kind === "folder") {
    const file = path.join(source.folder, "onnx", identity.dtype === "int8" ? "model_quantized.onnx" : "model.onnx");
    const stat = fs.statSync(file);
    weights = crypto.createHash("sha256").update(`${stat.size}:${stat.mtimeMs}:${file}`).digest("hex").slice(0, 16);
  }
  return `${identity.model}|${identity.dtype}|${identity.max_seq_length}|${weights}`;
}
