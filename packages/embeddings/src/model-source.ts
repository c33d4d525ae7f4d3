import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { installRoot } from "@ats-lora/core";

/** Where an embedder's files come from. */
export type ModelSource =
  | { kind: "folder"; folder: string; modelId: string }
  | { kind: "hub"; modelId: string };

/** Provenance written by scripts/assemble-embedder.py beside the files it assembles. */
interface AssembledManifest {
  model_id: string;
  max_seq_length?: number;
}

export const ASSEMBLED_MANIFEST = "ats-lora-embedder.json";

/** Folder of the models the project assembles offline (scripts/assemble-embedder.py). */
export function vendoredModelsDir(): string {
  return path.join(installRoot(), "vendor", "models");
}

/**
 * A model argument is a local folder, or a hub id. A hub id whose assembled copy exists under vendor/models/
 * (e.g. sentence-transformers/all-MiniLM-L6-v2 → vendor/models/all-MiniLM-L6-v2) loads from there, so the
 * default embedder works offline; any other id downloads from the Hugging Face hub as usual (HF_TOKEN honoured).
 */
export function resolveModelSource(model: string, vendoredDir = vendoredModelsDir()): ModelSource {
  const asPath = path.resolve(model);
  if (fs.existsSync(asPath) && fs.statSync(asPath).isDirectory()) {
    return { kind: "folder", folder: asPath, modelId: readAssembled(asPath)?.model_id ?? asPath };
  }
  const vendored = path.join(vendoredDir, path.basename(model));
  const assembled = readAssembled(vendored);
  if (assembled && assembled.model_id === model) return { kind: "folder", folder: vendored, modelId: model };
  return { kind: "hub", modelId: model };
}

export function readAssembled(folder: string): AssembledManifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(folder, ASSEMBLED_MANIFEST), "utf8")) as AssembledManifest;
  } catch {
    return undefined;
  }
}

/** Where hub downloads are kept: $ATS_LORA_HOME/hub, else ~/.cache/ats-lora/hub. */
export function hubCacheDir(): string {
  const home = process.env.ATS_LORA_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "ats-lora");
  return path.join(home, "hub");
}
