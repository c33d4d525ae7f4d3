import fs from "node:fs";
import path from "node:path";
import { isAtsError, readModelCard, readRegistry, type AdapterCard, type ModelCard, type OperationContext, type OperationEvent, type OperationOptions, type Registry, type Stage } from "@ats-lora/core";
import { stageOf } from "./versions.js";
import { configuredBase, weightBytes } from "./folders.js";

export interface ModelListing {
  name: string;
  path: string;
  /** base: pulled (a base model.json); adapter: a PEFT adapter; matcher: a TF-IDF matcher (match train); model: any other model folder or .gguf file. */
  kind: "base" | "adapter" | "matcher" | "model";
  format: "gguf" | "hf" | "peft" | "tfidf";
  /** The weights' bytes: the base file, the adapter's weights (not its exports), or the folder's weight files. */
  size_bytes: number;
  /** An adapter's base: from its model.json lineage, else its adapter_config.json; null for the others. */
  base: string | null;
  /** What an adapter folder holds exported: its .gguf files, and merged HF folders (with a trailing /). */
  exports: string[];
  created_at: string;
  /** An adapter's stage in models/registry.json (models promote), or null. */
  stage: Stage | null;
  /** An adapter's lineage from its model.json; null for other models and adapters trained before it was recorded. */
  lineage: {
    base_sha256: string | null;
    dataset: NonNullable<AdapterCard["dataset"]> | null;
    settings_sha256: string | null;
    parent: string | null;
    evals: number;
  } | null;
}

export interface ModelList {
  models_dir: string;
  /** Which adapter each stage holds. */
  production: string | null;
  staging: string | null;
  models: ModelListing[];
}

/**
 * `models list`: the models under models/, one level deep (a base model's hf/ folder, which training made from
 * its GGUF, is part of it, not a model of its own). A missing models/ is an empty list; a folder with an unreadable
 * model.json is listed from its files, with a warning.
 */
export function listModels(context: OperationContext, options: OperationOptions<OperationEvent> = {}): ModelList {
  const dir = context.paths.models;
  const entries = fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : [];
  const registry = readRegistry(dir);
  const models: ModelListing[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isFile() && entry.name.endsWith(".gguf")) {
      const stat = fs.statSync(full);
      models.push({ name: entry.name, path: full, kind: "model", format: "gguf", size_bytes: stat.size, base: null, exports: [], created_at: stat.mtime.toISOString(), stage: null, lineage: null });
    } else if (entry.isDirectory()) {
      const listing = describeFolder(full, registry, (message) => options.onEvent?.({ type: "warning", message }));
      if (listing) models.push(listing);
    }
  }
  return { models_dir: dir, production: registry.production, staging: registry.staging, models };
}

function describeFolder(dir: string, registry: Registry, warn: (message: string) => void): ModelListing | undefined {
  const name = path.basename(dir);
  let card: ModelCard | undefined;
  try {
    card = readModelCard(dir);
  } catch (error) {
    if (!isAtsError(error)) throw error;
    warn(error.message);
  }
  const modified = fs.statSync(dir).mtime.toISOString();
  if (card?.kind === "base") {
    return { name, path: dir, kind: "base", format: card.format, size_bytes: card.size_bytes, base: null, exports: [], created_at: card.pulled_at, stage: null, lineage: null };
  }
  if (card?.kind === "matcher") {
    const file = path.join(dir, card.file);
    const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
    const lineage = { base_sha256: null, dataset: card.dataset, settings_sha256: null, parent: null, evals: 0 };
    return { name, path: dir, kind: "matcher", format: "tfidf", size_bytes: size, base: null, exports: [], created_at: card.created_at, stage: null, lineage };
  }
  const files = fs.readdirSync(dir);
  if (card?.kind === "adapter" || files.includes("adapter_config.json")) {
    const weights = files.filter((file) => /^adapter_model\.(safetensors|bin)$/.test(file));
    return {
      name,
      path: dir,
      kind: "adapter",
      format: "peft",
      size_bytes: weights.reduce((sum, file) => sum + fs.statSync(path.join(dir, file)).size, 0),
      base: card?.kind === "adapter" ? card.base.path : configuredBase(dir),
      exports: adapterExports(dir, files),
      created_at: card?.kind === "adapter" ? card.created_at : modified,
      stage: stageOf(registry, name),
      lineage:
        card?.kind === "adapter" && card.dataset !== undefined
          ? { base_sha256: card.base.sha256, dataset: card.dataset, settings_sha256: card.settings_sha256 ?? null, parent: card.parent?.name ?? null, evals: card.evals?.length ?? 0 }
          : null,
    };
  }
  if (files.includes("config.json")) {
    return { name, path: dir, kind: "model", format: "hf", size_bytes: weightBytes(dir), base: null, exports: [], created_at: modified, stage: null, lineage: null };
  }
  if (files.some((file) => file.endsWith(".gguf"))) {
    return { name, path: dir, kind: "model", format: "gguf", size_bytes: weightBytes(dir), base: null, exports: [], created_at: modified, stage: null, lineage: null };
  }
  return undefined;
}

function adapterExports(dir: string, files: string[]): string[] {
  return files
    .filter((file) => {
      if (file.endsWith(".gguf")) return true;
      return fs.statSync(path.join(dir, file)).isDirectory() && fs.existsSync(path.join(dir, file, "config.json"));
    })
    .map((file) => (file.endsWith(".gguf") ? file : `${file}/`))
    .sort();
}
