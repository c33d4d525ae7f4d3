import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, workdirPaths } from "@ats-lora/core";
import { pullModel } from "@ats-lora/models";
import { Command } from "commander";
import { readGgufFileInfo } from "node-llama-cpp";
import { chatCommand } from "./command.js";
import type { LocalModelSpec } from "./local-model.js";

/** The real model the tests run: SmolLM2-135M-Instruct as GGUF, pulled into a fresh workdir as a user pulls it. */
export async function testModelFile(): Promise<string> {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-inference-model-"));
  const pulled = await pullModel({ name: "smollm2-135m-instruct" }, { paths: workdirPaths(workdir), config: loadConfig({ env: {} }) });
  return pulled.weights;
}

/** `ats-lora` as the cli mounts `chat` (its global options), with a resolver that takes a .gguf path as the base. */
export function chatProgram(): Command {
  const resolveModel = async (model: string, options: { base?: string }): Promise<LocalModelSpec> =>
    options.base === undefined
      ? { name: path.basename(model, ".gguf"), base: model, adapters: [] }
      : { name: path.basename(model, ".gguf"), base: options.base, adapters: [{ name: path.basename(model, ".gguf"), path: model }] };
  return new Command("ats-lora").option("--workdir <dir>").option("--config <file>").option("--json").option("--quiet").exitOverride().addCommand(chatCommand({ resolveModel }));
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-inference-"));
}

/**
 * Writes a LoRA adapter GGUF for the attention query projections of `modelFile`, in the layout llama.cpp's
 * convert_lora_to_gguf writes (general.type "adapter", blk.N.attn_q.weight.lora_a/.lora_b as F32). `extraWidth`
 * makes lora_a wider than the base's rows, an adapter for another base; `bScale` 0 makes the update zero.
 */
export async function writeLoraAdapter(file: string, modelFile: string, options: { rank?: number; bScale: number; extraWidth?: number }): Promise<string> {
  const info = await readGgufFileInfo(modelFile, { logWarnings: false, sourceType: "filesystem", ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"] });
  const rank = options.rank ?? 8;
  const random = seededRandom(7);
  const tensors: Array<{ name: string; dims: number[]; values: Float32Array }> = [];
  for (const tensor of info.fullTensorInfo ?? []) {
    const match = /^(blk\.\d+\.attn_q\.weight)$/.exec(tensor.name);
    if (!match) continue;
    const [inputs, outputs] = tensor.dimensions.map(Number) as [number, number];
    const width = inputs + (options.extraWidth ?? 0);
    tensors.push({ name: `${match[1]}.lora_a`, dims: [width, rank], values: Float32Array.from({ length: width * rank }, () => (random() - 0.5) * 0.6) });
    tensors.push({ name: `${match[1]}.lora_b`, dims: [rank, outputs], values: Float32Array.from({ length: rank * outputs }, () => (random() - 0.5) * 0.6 * options.bScale) });
  }
  const metadata: Array<[string, string | number]> = [
    ["general.architecture", String(info.metadata.general.architecture)],
    ["general.type", "adapter"],
    ["adapter.type", "lora"],
    ["adapter.lora.alpha", rank],
  ];
  return writeGguf(file, metadata, tensors);
}

const ALIGNMENT = 32;

/** Writes a GGUF version 3 file: header, key-values (strings, float32), tensor infos (F32), then the aligned tensor data. */
export function writeGguf(file: string, metadata: Array<[string, string | number]>, tensors: Array<{ name: string; dims: number[]; values: Float32Array }>): string {
  const parts: Buffer[] = [];
  const u32 = (value: number) => parts.push(Buffer.from(new Uint32Array([value]).buffer));
  const u64 = (value: number) => parts.push(Buffer.from(new BigUint64Array([BigInt(value)]).buffer));
  const text = (value: string) => {
    u64(Buffer.byteLength(value));
    parts.push(Buffer.from(value));
  };
  // GGUF value types: 6 float32, 8 string.
  const value = (item: string | number) => {
    if (typeof item === "string") {
      u32(8);
      text(item);
    } else {
      u32(6);
      parts.push(Buffer.from(new Float32Array([item]).buffer));
    }
  };
  parts.push(Buffer.from("GGUF"));
  u32(3);
  u64(tensors.length);
  u64(metadata.length);
  for (const [key, item] of metadata) {
    text(key);
    value(item);
  }
  let offset = 0;
  for (const tensor of tensors) {
    text(tensor.name);
    u32(tensor.dims.length);
    for (const dim of tensor.dims) u64(dim);
    u32(0); // F32
    u64(offset);
    offset += align(tensor.values.byteLength);
  }
  const header = Buffer.concat(parts);
  const data = tensors.map((tensor) => {
    const bytes = Buffer.alloc(align(tensor.values.byteLength));
    Buffer.from(tensor.values.buffer).copy(bytes);
    return bytes;
  });
  fs.writeFileSync(file, Buffer.concat([header, Buffer.alloc(align(header.length) - header.length), ...data]));
  return file;
}

function align(size: number): number {
  return Math.ceil(size / ALIGNMENT) * ALIGNMENT;
}

/** Deterministic numbers in [0, 1) (mulberry32). */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
